"""A user's config in a folder of their own: the demo detector inherited by name from the installed package, shrunk
to train two iterations on CPU (``run.sh``). Data: ``python -m convnext_dense.synthetic.coco ROOT`` and
COCO_DEMO_ROOT=ROOT/."""
_base_ = 'convnext_dense::coco/demo_cascade_convnext.py'

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
loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(loader, batch_size=1)  # 2 images: 2 iterations
val_dataloader = dict(loader, batch_size=1)
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1))
