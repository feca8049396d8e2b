"""The segmentation demo shrunk for tests: a 4-block ConvNeXt, 16-channel heads, 64 px images, no randomness.

Data: ``convnext_dense.synthetic.ade.write_ade_demo(root, ..., size=64)`` with ADE_DEMO_ROOT=root. Without flips
and dropout a run is a function of the seed alone, so a resumed run can be compared with an uninterrupted one.
"""
_base_ = ['../../configs/ade20k/demo_upernet_convnext.py']

tiny = dict(depths=(1, 1, 1, 1), channels=(8, 16, 24, 32))
model = dict(
    backbone=dict(arch=dict(_delete_=True, **tiny)),
    decode_head=dict(in_channels=tiny['channels'], channels=16, dropout_ratio=0.0),
    auxiliary_head=dict(in_channels=tiny['channels'][2], channels=16, dropout_ratio=0.0))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(loader, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(loader)
test_dataloader = val_dataloader
max_iters = 6
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2, max_keep_ckpts=1))
log_processor = dict(window_size=1)  # log each iteration's own loss, not a running mean
