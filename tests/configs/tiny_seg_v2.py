"""The ConvNeXt V2 UperNet recipe (``upernet_convnext_v2_b_512.py``) shrunk for tests: a 4-block V2 backbone,
16-channel heads, 64 px crops, plain fp32 (AMP needs a GPU), initialised as CONVNEXT_PRETRAINED says.

Data: ``convnext_dense.synthetic.ade.write_ade_demo(root, ..., size=64)`` (ADE20K's layout) with ADE20K_ROOT=root.
"""
_base_ = ['../../configs/ade20k/upernet_convnext_v2_b_512.py']

tiny = dict(depths=(1, 1, 1, 1), channels=(8, 16, 24, 32))
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch=dict(_delete_=True, **tiny)),
    decode_head=dict(in_channels=tiny['channels'], channels=16),
    auxiliary_head=dict(in_channels=tiny['channels'][2], channels=16),
    test_cfg=dict(crop_size=crop_size, stride=(43, 43)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(loader, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(loader, batch_size=1, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=2)
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)]
optim_wrapper = dict(type='OptimWrapper', _delete_=True, optimizer=_base_.optim_wrapper.optimizer,
                     constructor=_base_.optim_wrapper.constructor, paramwise_cfg=_base_.optim_wrapper.paramwise_cfg)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
log_processor = dict(window_size=1)
