"""RTMDet-l with a ConvNeXt-B backbone, COCO, 100 epochs at 640 x 640 (published: box AP 53.1).

Source: mmdet 3.3.0's ``configs/rtmdet/rtmdet_l_convnext_b_4xb32-100e_coco.py``, field by field, on the same
``rtmdet_l_8xb32-300e_coco.py`` base: 4 GPUs x 32 images, RTMDet's Mosaic / MixUp pipeline switched to the lighter
stage-2 pipeline for the last 10 epochs, AdamW lr 1e-3 weight decay 0.05 with layer-wise decay 0.8 over 12 layers,
1000-iteration warmup then cosine from epoch 50 to 100, EMA, GroupNorm in neck and head. Differences: our backbone
and layer-decay constructor in place of mmpretrain's ConvNeXt and mmdet's ``LearningRateDecayOptimizerConstructor``
(the same rule; mmpretrain is not needed), our run-time guarantees after mmdet's custom hooks, the data root read
from ``COCO_ROOT``, valid Python instead of mmdet's ``{{_base_.train_pipeline_stage2}}`` placeholder, and
``auto_scale_lr`` for the recipe's 128 images per iteration. The weights are the ones mmdet's config starts from:
mmpretrain's ImageNet-21k pre-trained, 1k fine-tuned 384 px ConvNeXt-B (``backbone.`` prefix, read by our loader).
Its ``norm3`` (mmpretrain's final LayerNorm) is loaded and applied to the stage-3 map, as mmpretrain's backbone does
with ``gap_before_final_norm=False``; ``norm1`` and ``norm2`` start at weight 1, bias 0 there as here.
"""
_base_ = [
    'mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py',
    '../_base_/reliability_hooks.py',  # not reliability.py: both bases would set custom_hooks
]
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

custom_imports = dict(imports=['convnext_dense'], allow_failed_imports=False)
default_hooks = dict(checkpoint=_base_.checkpoint_hook)  # interval 10, max_keep_ckpts 3 from the base
val_cfg = dict(type=_base_.val_loop)
test_cfg = dict(type=_base_.test_loop)

norm_cfg = dict(type='GN', num_groups=32)
arch = 'base'
out_indices = (1, 2, 3)
checkpoint_file = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext-base_in21k-pre-3rdparty_in1k-384px_20221219-4570f792.pth}}'  # noqa: E501
model = dict(
    type='RTMDet',
    data_preprocessor=dict(
        _delete_=True,
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        batch_augments=None),
    backbone=dict(
        _delete_=True,
        type='convnext_dense.ConvNeXt',
        arch=arch,
        out_indices=out_indices,
        drop_path_rate=0.7,
        layer_scale_init_value=1.0,
        with_cp=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')),
    neck=dict(in_channels=list(output_shape(arch, out_indices).channels), norm_cfg=norm_cfg),  # [256, 512, 1024]
    bbox_head=dict(norm_cfg=norm_cfg))

max_epochs = 100
stage2_num_epochs = 10
interval = 10
base_lr = 0.001

data_root = '{{$COCO_ROOT:data/coco/}}'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

train_cfg = dict(
    type=_base_.epoch_train_loop,
    max_epochs=max_epochs,
    val_interval=interval,
    dynamic_intervals=[(max_epochs - stage2_num_epochs, 1)])

# The base's paramwise norm_decay_mult / bias_decay_mult = 0 are what the constructor does anyway (no weight decay
# for 1-D parameters and biases); num_layers 12 is also what it derives for base.
optim_wrapper = dict(
    constructor='convnext_dense.ConvNeXtLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.8, decay_type='layer_wise', num_layers=12),
    optimizer=dict(lr=base_lr))

param_scheduler = [
    dict(type='LinearLR', start_factor=1.0e-5, by_epoch=False, begin=0, end=1000),
    dict(
        # cosine lr from epoch 50 to 100
        type='CosineAnnealingLR',
        eta_min=base_lr * 0.05,
        begin=max_epochs // 2,
        end=max_epochs,
        T_max=max_epochs // 2,
        by_epoch=True,
        convert_to_iter_based=True),
]

custom_hooks = [
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True, priority=49),
    dict(type='PipelineSwitchHook', switch_epoch=max_epochs - stage2_num_epochs,
         switch_pipeline=_base_.train_pipeline_stage2),
    *_base_.reliability_hooks,
]

# mmdet's base keeps mmdet's default of 16 images; the recipe trains on 4 GPUs x 32 (`--auto-scale-lr` scales from it)
auto_scale_lr = dict(base_batch_size=128)
