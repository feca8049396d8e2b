"""DINOv3's ADE20K linear probe on a frozen DINOv3 ConvNeXt: what every size shares.

Source, field by field: facebookresearch/dinov3 ``dinov3/eval/segmentation/configs/config-ade20k-linear-training.yaml``
with its ``train.py``, ``transforms.py``, ``schedulers.py`` and ``models/heads/linear_head.py``:
- backbone frozen, the LAST stage only, through DINOv3's final norm (``use_backbone_norm``; our ``norm3``, which the
  loader fills from the file's ``norm``), stride 32; no class token;
- head: Dropout2d(0.1) -> SyncBN -> 1x1 conv initialised N(0, 0.01) (``convnext_dense.DINOv3LinearHead``); logits
  upsampled bilinearly (align_corners False) to the labels for the cross-entropy (weight 1, no dice), mean over all
  pixels as its CrossEntropyLoss;
- AdamW lr 1e-3, betas (0.9, 0.999), weight decay 1e-3 on every trained parameter, no gradient clipping, fp32;
  2 images x 8 GPUs = 16 per step; 40k iterations; WarmupOneCycleLR: 1500 linear warm-up iterations from 1e-6 x lr,
  then cosine to 0; validation every 5000;
- train: short side 512 x U(0.5, 2), 512 x 512 random crop with cat_max_ratio 0.75, flip 0.5, photometric distortion
  (brightness 32, contrast and saturation 0.5-1.5, hue +-0.5 of the circle: mmseg's hue_delta=90 of OpenCV's 180),
  ImageNet mean / std, ``reduce_zero_label``; test: short side 512, sliding window 512 at stride 341.
Deviations, each small: mmseg's resize caps the long side at 4x the short one ((2048, 512) x ratio) where DINOv3 does
not (only images wider than 4:1 differ); DINOv3's warm-up also multiplies by (1 - iter / 40k), at most 3.75% lower
at its end, which LinearLR does not. Each size names its arch, weights and the head's inputs (``output_shape``).
"""
_base_ = [
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',  # its hooks and loops; optimizer and schedule replaced below
    '../../_base_/reliability.py',
]
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

custom_imports = dict(imports=['convnext_dense'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(_base_.checkpoint_hook, interval=5000))
val_cfg = dict(type=_base_.val_loop)
test_cfg = dict(type=_base_.test_loop)

arch = 'tiny'  # each size sets its own
data_root = '{{$ADE20K_ROOT:data/ade/ADEChallengeData2016}}'
crop_size = (512, 512)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],  # ImageNet's, as DINOv3's transforms
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
last = output_shape(arch, out_indices=(3,))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='convnext_dense.ConvNeXt',
        arch=arch,
        out_indices=(3,),  # the last stage through norm3 = DINOv3's norm
        frozen_stages=3,  # all of it, its output norm included
        drop_path_rate=0.0,
        init_cfg=dict(type='Pretrained', checkpoint=None)),  # each size names its file
    decode_head=dict(
        type='convnext_dense.DINOv3LinearHead',
        in_channels=last.channels[0],
        channels=last.channels[0],
        in_index=0,
        num_classes=150,
        dropout_ratio=0.1,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

hue_delta = 90  # DINOv3's hue factor U(-0.5, 0.5) of the full circle; mmseg's default 18 is a fifth of it
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', hue_delta=hue_delta),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root, pipeline=train_pipeline))  # x 8 GPUs
val_dataloader = dict(batch_size=1, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

max_iters = 40000
warmup_iters = 1500
optim_wrapper = dict(
    _delete_=True,  # the schedule base's SGD
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-3))
optimizer = None  # the schedule base leaves an unused SGD here; the optimizer is optim_wrapper.optimizer
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=max_iters - warmup_iters, eta_min=0.0, by_epoch=False, begin=warmup_iters,
         end=max_iters),
]
train_cfg = dict(type=_base_.iter_train_loop, max_iters=max_iters, val_interval=5000)
