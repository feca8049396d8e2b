"""The RTMDet-l ConvNeXt-B recipe (``rtmdet_l_convnext_b.py``) shrunk for tests: a 4-block backbone (channels in
multiples of 32 for the GroupNorm's 32 groups) initialised from the mmpretrain-layout file CONVNEXT_PRETRAINED
names, a 32-channel neck and head, the recipe's pipelines at a tenth of their sizes (64 px), 2 epochs of which the
last runs the stage-2 pipeline, EMA, the demo's shapes as classes.

Data: ``convnext_dense.synthetic.coco.write_coco_demo(root, ..., size=64)`` (COCO's layout) with COCO_ROOT=root/.
"""
_base_ = ['../../configs/coco/rtmdet_l_convnext_b.py']
from convnext_dense import output_shape  # noqa: E402
from convnext_dense.synthetic import scenes  # noqa: E402

tiny = dict(depths=(1, 1, 1, 1), channels=(32, 64, 128, 256))
width = 32
classes = scenes.SHAPES
model = dict(
    backbone=dict(arch=dict(_delete_=True, **tiny)),
    neck=dict(in_channels=list(output_shape(tiny, _base_.out_indices).channels), out_channels=width,
              num_csp_blocks=1),
    bbox_head=dict(in_channels=width, feat_channels=width, num_classes=len(classes)))
sizes = ('img_scale', 'scale', 'crop_size', 'size')  # 640 -> 64, 1280 -> 128
train_pipeline, train_pipeline_stage2, test_pipeline = (
    [{k: tuple(s // 10 for s in v) if k in sizes else v for k, v in t.items()} for t in pipeline]
    for pipeline in (_base_.train_pipeline, _base_.train_pipeline_stage2, _base_.test_pipeline))
max_epochs = 2
metainfo = dict(classes=classes)
loader = dict(batch_size=2, num_workers=0, persistent_workers=False, pin_memory=False)
train_dataloader = dict(loader, dataset=dict(metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(loader, dataset=dict(metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=max_epochs, val_interval=1, dynamic_intervals=[(max_epochs - 1, 1)])
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)]
custom_hooks = [dict(hook, switch_epoch=max_epochs - 1, switch_pipeline=train_pipeline_stage2)
                if hook['type'] == 'PipelineSwitchHook' else hook for hook in _base_.custom_hooks]
default_hooks = dict(logger=dict(interval=1))
log_processor = dict(window_size=1)
