"""The ConvNeXt V2 Mask R-CNN recipe (``mask_rcnn_convnext_v2_b.py``) shrunk for tests: a 4-block V2 backbone
initialised from the FCMAE file named by CONVNEXT_PRETRAINED, 16-channel neck and heads, large-scale jitter at 64 px,
the demo's shapes as classes, plain fp32 (AMP needs a GPU).

Data: ``convnext_dense.synthetic.coco.write_coco_demo(root, ..., size=64)`` (COCO's layout) with COCO_ROOT=root/.
"""
_base_ = ['../../configs/coco/mask_rcnn_convnext_v2_b.py']
from convnext_dense.synthetic import scenes  # noqa: E402

tiny = dict(depths=(1, 1, 1, 1), channels=(8, 16, 24, 32))
width = 16
image_size = (64, 64)
classes = scenes.SHAPES
model = dict(
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]),
    backbone=dict(arch=dict(_delete_=True, **tiny)),
    neck=dict(in_channels=list(tiny['channels']), out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=32, num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width, num_classes=len(classes))))
train_pipeline = [dict(t, scale=image_size) if t['type'] == 'RandomResize' else
                  dict(t, crop_size=image_size) if t['type'] == 'RandomCrop' else t
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, scale=image_size) if t['type'] == 'Resize' else t for t in _base_.test_pipeline]
metainfo = dict(classes=classes)
loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(loader, dataset=dict(metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(loader, dataset=dict(metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)]
optim_wrapper = dict(type='OptimWrapper')
default_hooks = dict(logger=dict(interval=1))
log_processor = dict(window_size=1)
