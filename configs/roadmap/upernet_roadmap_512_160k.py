"""UperNet on ADE20K (512 x 512 crops, 160k iterations) with a backbone of the ConvNeXt roadmap: the ablation of "A
ConvNet for the 2020s" (Liu et al., CVPR 2022, Section 2) on segmentation, one step at a time.

The step is the one variable: ``--cfg-options model.backbone.step=gelu`` (any of ``convnext_dense.ROADMAP_STEPS``;
``model.backbone.regime=resnet200`` for the ResNet-200 -> ConvNeXt-B path). The heads' ``in_channels`` follow the
step (``convnext_dense.FollowBackbone`` reads them from the backbone when the model is built: the decode head all
four maps, the auxiliary head its ``in_index``). Everything else is the ConvNeXt-T UperNet recipe of
``../ade20k/upernet_convnext_t_512.py`` (AdamW lr 1e-4, weight decay 0.05, stage-wise lr decay 0.9, drop path 0.4,
16 images per iteration, AMP), held fixed across steps: the recipe the path's end was published with.

Weights: see ``_base_/roadmap_backbone.py``.
"""
_base_ = ['../ade20k/upernet_convnext_t_512.py', './_base_/roadmap_backbone.py']

model = dict(
    type='convnext_dense.FollowBackbone',
    model_type='EncoderDecoder',
    backbone=dict(_delete_=True, **_base_.roadmap_backbone),
    decode_head=dict(in_channels=None),  # read from the backbone when built
    auxiliary_head=dict(in_channels=None))
# The BN steps as mmseg trains ResNets on ADE20K: batch statistics, synchronised over the GPUs (16 images)
sync_bn = 'torch'
