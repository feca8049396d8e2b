"""Mask R-CNN 1x on COCO with a backbone of the ConvNeXt roadmap: the ablation of "A ConvNet for the 2020s" (Liu et
al., CVPR 2022, Section 2) on detection, one step at a time.

The step is the one variable: ``--cfg-options model.backbone.step=gelu`` (any of ``convnext_dense.ROADMAP_STEPS``;
``model.backbone.regime=resnet200`` for the ResNet-200 -> ConvNeXt-B path). The FPN's ``in_channels`` follow the
step (``convnext_dense.FollowBackbone`` reads them from the backbone when the model is built). Everything else is
held fixed: the ConvNeXt-T Mask R-CNN recipe of ``../coco/mask_rcnn_convnext_t.py`` (multi-scale crop pipeline,
AdamW lr 1e-4, weight decay 0.05, layer-wise lr decay 0.95, drop path 0.4, AMP, 16 images per iteration), because
an ablation means something only with all else equal and this is the recipe the path's end was published with; the
one change is the schedule: 1x (12 epochs, lr x0.1 after epochs 8 and 11) instead of 3x, 16 steps being 16 runs.

Weights: see ``_base_/roadmap_backbone.py``.
"""
_base_ = ['../coco/mask_rcnn_convnext_t.py', './_base_/roadmap_backbone.py']

max_epochs = 12
model = dict(
    type='convnext_dense.FollowBackbone',
    model_type='MaskRCNN',
    # norm_eval: the BN steps as mmdet trains ResNets (2 images per GPU are too few for batch statistics)
    backbone=dict(_delete_=True, **_base_.roadmap_backbone, norm_eval=True),
    neck=dict(in_channels=None))  # read from the backbone when built
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
