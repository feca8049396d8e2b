"""DINO-4scale + ConvNeXt, COCO, 12 epochs: detrex's published recipe on mmdet's DINO (Zhang et al., ICLR 2023).

Source (IDEA-Research/detrex, commit e244e6c): ``projects/dino/configs/models/dino_r50.py`` (positional encoding,
neck, transformer, matcher, losses, denoising), ``projects/dino/configs/models/dino_convnext.py`` (backbone),
``projects/dino/configs/dino-convnext/dino_convnext_{tiny,small,base,large}_384_4scale_12ep.py`` (optimizer, clipping,
batch, schedule, start files), ``configs/common/{optim,train,coco_schedule}.py`` and
``configs/common/data/coco_detr.py`` (augmentation). Published box AP on COCO val (``projects/dino/README.md``):
52.4 / 54.2 / 55.1 / 55.5 for T / S / B / L.

It inherits mmdet 3.3.0's ``dino/dino-4scale_r50_8xb2-12e_coco.py``, which already equals detrex in 900 queries,
two stages with box refinement, six encoder / decoder layers (8 heads, FFN 2048, no dropout, 4 levels x 4 points),
the matcher's and the losses' weights (focal 2 / L1 5 / GIoU 2 and focal 1 / L1 5 / GIoU 2), 100 denoising queries
with label noise 0.5 (mmdet's ``label_noise_scale`` is detrex's ``label_noise_ratio``: ``dino_r50.py`` sets 0.5 over
the class default of 0.2) and box noise 1.0, 300 boxes per image at test, AdamW lr 1e-4 / weight decay 1e-4, backbone
lr x 0.1, gradient clipping 0.1, 16 images per step, DETR's augmentation. This file changes what detrex does
differently and marks what mmdet cannot follow.
"""
_base_ = [
    'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    '../../_base_/reliability.py',
]
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

custom_imports = dict(imports=['convnext_dense'], allow_failed_imports=False)
default_hooks = dict(checkpoint=_base_.checkpoint_hook)
val_cfg = dict(type=_base_.val_loop)
test_cfg = dict(type=_base_.test_loop)

# dino_convnext.py: stages 1-3 (strides 8, 16, 32), drop path 0 and layer scale 1.0 for every size (the pretrained
# gammas replace it). Start file: the official ImageNet-22k -> 1k 384 px weights, as the dino-convnext configs'
# train.init_checkpoint (CONVNEXT_PRETRAINED or --cfg-options model.backbone.init_cfg.checkpoint=PATH moves it; a
# missing file raises an error naming its download URL).
arch = 'tiny'
convnext = dict(
    type='convnext_dense.ConvNeXt',
    arch=arch,
    out_indices=(1, 2, 3),
    drop_path_rate=0.0,
    layer_scale_init_value=1.0,
    init_cfg=dict(type='Pretrained', checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/convnext_tiny_22k_1k_384.pth}}'))
model = dict(
    backbone=dict(_delete_=True, **convnext),
    # dino_r50.py's ChannelMapper: 1x1 convs + GroupNorm(32), a fourth level by a 3x3 stride-2 conv of the last
    # input; detrex's convs have a bias (ConvNormAct's bias=True), mmdet's ConvModule drops it before a norm
    neck=dict(in_channels=list(output_shape(arch, convnext['out_indices']).channels), bias=True),
    # dino_r50.py's PositionEmbeddingSine: temperature 10000, offset -0.5 (mmdet's DINO recipe: 20 and 0.0); kept,
    # so that detrex's trained DINO-ConvNeXt checkpoints evaluate with these configs
    positional_encoding=dict(temperature=10000, offset=-0.5))

# detectron2's train loader drops images without (non-crowd) annotations (get_detection_dataset_dicts' filter_empty);
# mmdet's DINO recipe keeps them (filter_empty_gt=False). Dropped here as in detrex; two differences remain: mmdet's
# filter keeps an image whose only annotations are crowd boxes, which detectron2 drops; and it drops images with a
# side under 32 px (the inherited min_size=32), which detectron2 keeps.
data_root = '{{$COCO_ROOT:data/coco/}}'
train_dataloader = dict(dataset=dict(data_root=data_root, filter_cfg=dict(filter_empty_gt=True)))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
# Augmentation: the inherited pipeline is coco_detr.py's (flip; then shorter side 480..800 step 32, long side <= 1333;
# or shorter side 400/500/600 -> absolute crop 384..600 -> 480..800). One difference: mmdet caps the crop branch's
# first resize at a long side of 4200, detrex does not; no COCO image reaches it (aspect ratios < 7).

# Schedule: mmdet's 12 epochs with lr x 0.1 after epoch 11, not detrex's 90,000 iterations with the step at 82,500
# (coco_schedule.py's lr_multiplier_12ep; no warm-up in either). 12 epochs of the 117,266 non-empty train images
# at 8 GPUs x 2 are 12 x 7,330 = 87,960 steps with the step after 80,630: 2.3 % fewer than detrex. Epochs keep
# mmdet's validation per epoch and the epoch loop's exact resume (a resumed epoch skips the batches it trained, with
# the checkpoint's random states); the schedule's unit is the one mmdet's DINO numbers use.
train_cfg = dict(type=_base_.epoch_train_loop)

# optim.py's AdamW through detectron2's get_default_optimizer_params: weight_decay_norm=0.0 reaches torch's norm
# modules only (the neck's GroupNorm, the transformer's LayerNorms), not detrex's ConvNeXt LayerNorm (a plain
# nn.Module), biases and embeddings keep weight decay; lr_factor_func: x 0.1 for names with 'backbone'. mmengine's
# default constructor gives the same: custom_keys decide for the backbone (decay kept, norms included), norm_decay_mult
# for the rest (mmdet's recipe has no norm_decay_mult: it decays the norms too).
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.0))
