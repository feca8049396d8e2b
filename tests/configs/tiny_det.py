"""The detection demo shrunk for tests: a 4-block ConvNeXt, 16-channel neck and heads, 64 px images (the demo's
pipelines resize them to its 128 px).

Data: ``convnext_dense.synthetic.coco.write_coco_demo(root, ..., size=64)`` with COCO_DEMO_ROOT=root/.
"""
_base_ = ['../../configs/coco/demo_cascade_convnext.py']

tiny = dict(depths=(1, 1, 1, 1), channels=(8, 16, 24, 32))
width = 16
model = dict(
    backbone=dict(arch=dict(_delete_=True, **tiny)),
    neck=dict(in_channels=list(tiny['channels']), out_channels=width, norm_cfg=dict(type='GN', num_groups=4)),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=[dict(head, in_channels=width, conv_out_channels=width, fc_out_channels=32)
                   for head in _base_.model.roi_head.bbox_head],
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width, norm_cfg=dict(type='GN', num_groups=4))))
loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(loader, batch_size=1)  # 4 images: 4 iterations, 2 per rank under DDP
val_dataloader = dict(loader)
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=4)]
default_hooks = dict(logger=dict(interval=1))
log_processor = dict(window_size=1)
