"""Mask2Former + ConvNeXt-T, ADE20K 512x512, 160k iterations: mmseg 1.2.2's Swin-T recipe with our backbone.

Source: mmseg's ``configs/mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py`` (published with Swin-T:
48.66 mIoU; no ConvNeXt + Mask2Former result is published), inherited field by field: the whole head (100 queries,
the 6-layer deformable pixel decoder, 9 decoder layers, losses and matcher), AdamW lr 1e-4 weight decay 0.05 with
gradient clipping 0.01, poly schedule, 8 GPUs x 2 images, pipelines and whole-image test. Differences: the backbone
(ConvNeXt-T, ImageNet-1k weights), the head's ``in_channels`` from ``output_shape``, the parameter-wise settings of
``../_base_/mask2former_convnext.py`` (why: there), the data root ``$ADE20K_ROOT``, our guarantees.
"""
_base_ = [
    'mmseg::mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py',
    '../_base_/mask2former_convnext.py',
]
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

custom_imports = dict(imports=['mmdet.models', 'convnext_dense'], allow_failed_imports=False)  # stock: mmdet's

arch = 'tiny'
pretrained = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext_tiny_1k_224.pth}}'
model = dict(
    backbone=dict(_delete_=True, arch=arch, init_cfg=dict(type='Pretrained', checkpoint=pretrained),
                  **_base_.convnext_backbone),
    decode_head=dict(in_channels=list(output_shape(arch).channels)))

data_root = '{{$ADE20K_ROOT:data/ade/ADEChallengeData2016}}'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

optim_wrapper = dict(
    constructor='convnext_dense.ConvNeXtLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(_delete_=True, **_base_.convnext_paramwise_cfg))  # the stock keys name Swin's parameters
default_hooks = dict(checkpoint=_base_.checkpoint_hook)  # interval 5000 and save_best mIoU from the stock file
train_cfg = dict(type=_base_.iter_train_loop)
val_cfg = dict(type=_base_.val_loop)
test_cfg = dict(type=_base_.test_loop)
