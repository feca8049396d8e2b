"""Everything the published ConvNeXt COCO recipes share but the detector: backbone, data, augmentation, schedule,
optimizer, and the run-time guarantees of ``../../_base_/reliability.py``.

Source: the official ConvNeXt repository's ``object_detection/configs/convnext/*3x*`` (mmdet 2.x), as ported in
mmdet 3.3.0's ``configs/convnext/``. The detector configs (``cascade_mask_rcnn_convnext.py``,
``../mask_rcnn_convnext_t.py``) put ``convnext`` into their model.
"""
_base_ = [
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../../_base_/reliability.py',
]
custom_imports = dict(imports=['convnext_dense'], allow_failed_imports=False)
default_hooks = dict(checkpoint=_base_.checkpoint_hook)
val_cfg = dict(type=_base_.val_loop)
test_cfg = dict(type=_base_.test_loop)

# ConvNeXt-T with ImageNet-1k weights: the ImageNet checkpoint named by CONVNEXT_PRETRAINED (default below), or
# `--cfg-options model.backbone.init_cfg.checkpoint=PATH`; a missing file raises an error naming its download URL.
# Train from scratch with `--cfg-options model.backbone.init_cfg=None`. Size variants override arch, drop path and
# weights.
convnext = dict(
    type='convnext_dense.ConvNeXt',
    arch='tiny',
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.4,
    layer_scale_init_value=1.0,  # as published; the pretrained gamma overrides it
    init_cfg=dict(type='Pretrained', checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/convnext_tiny_1k_224.pth}}'))

# Standard layout (annotations/instances_{train,val}2017.json, {train,val}2017/); COCO_ROOT moves it.
data_root = '{{$COCO_ROOT:data/coco/}}'

# Multi-scale training with random crops (from DETR): flip, then one of two policies:
# (a) shorter side in 480..800 step 32; (b) shorter side in {400, 500, 600} -> absolute random crop of 384..600 px
# -> (a). The long side is capped at 1333 throughout.
multi_scales = [(short, 1333) for short in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoice', transforms=[
        [dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True)],
        [dict(type='RandomChoiceResize', scales=[(400, 1333), (500, 1333), (600, 1333)], keep_ratio=True),
         dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600), allow_negative_crop=True),
         dict(type='RandomChoiceResize', scales=multi_scales, keep_ratio=True)],
    ]),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2,  # per GPU; the recipe trains on 8 GPUs: 16 images per iteration
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

# 3x schedule: 36 epochs, lr x0.1 after epochs 27 and 33; the 500-iteration linear warmup from 0.001x comes from
# mmdet's schedule_1x (mmdet's own ConvNeXt configs use 1000; the official code uses 500).
max_epochs = 36
train_cfg = dict(type=_base_.epoch_train_loop, max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1),
]

# AdamW with layer-wise lr decay over the ConvNeXt backbone (see convnext_dense/models/layer_decay.py; the constructor
# derives the published num_layers from the depths: 6 for tiny, 12 for the 27-block archs); mixed precision as
# published for T/S/B (AmpOptimWrapper needs a GPU: the L/XL configs and the CPU demo use OptimWrapper).
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='convnext_dense.ConvNeXtLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.7, decay_type='layer_wise'),
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05))

# The lr above is for 16 images per iteration (8 GPUs x 2). On fewer GPUs, or with another batch size, add
# `--cfg-options auto_scale_lr.enable=True`: the Runner then multiplies the lr by (GPUs x batch_size) / 16.
auto_scale_lr = dict(enable=False, base_batch_size=16)
