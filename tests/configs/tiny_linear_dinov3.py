"""DINOv3's ADE20K linear probe shrunk for tests: the tiny arch, 64 px demo images, 8 iterations, everything else
(frozen backbone through norm3, the linear head, AdamW, warm-up + cosine, the augmentation, the sliding window) the
recipe's.

Data: ``convnext_dense.synthetic.ade.write_ade_demo(root, ..., size=64)`` with ADE_DEMO_ROOT=root; weights: a
DINOv3-layout file with CONVNEXT_PRETRAINED=file.
"""
_base_ = ['../../configs/ade20k/linear_dinov3_convnext_t_512.py']
from convnext_dense.synthetic import ade  # noqa: E402

tiny = dict(depths=(1, 1, 2, 1), channels=(8, 16, 24, 32))
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch=dict(_delete_=True, **tiny)),
    decode_head=dict(in_channels=tiny['channels'][-1], channels=tiny['channels'][-1], num_classes=len(ade.CLASSES)),
    test_cfg=dict(crop_size=crop_size, stride=(43, 43)))  # 512 / 341 shrunk alike
dataset = dict(type='BaseSegDataset', data_root='{{$ADE_DEMO_ROOT:data/ade_demo}}',
               metainfo=dict(classes=ade.CLASSES, palette=ade.PALETTE), img_suffix='.jpg', seg_map_suffix='.png',
               reduce_zero_label=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(256, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', hue_delta=_base_.hue_delta),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 64), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(loader, dataset=dict(
    _delete_=True, **dataset, data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
    pipeline=train_pipeline))
val_dataloader = dict(loader, dataset=dict(
    _delete_=True, **dataset, data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
    pipeline=test_pipeline))
test_dataloader = val_dataloader
max_iters = 8
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=2),
    dict(type='CosineAnnealingLR', T_max=max_iters - 2, eta_min=0.0, by_epoch=False, begin=2, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=max_iters))
log_processor = dict(window_size=1)
randomness = dict(seed=0)
