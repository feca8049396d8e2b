"""Mask2Former + ConvNeXt-B, ImageNet-22k weights, ADE20K 640x640, 160k iterations: mmseg 1.2.2's Swin-B in22k recipe.

Source: mmseg's ``mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py`` (published with Swin-B: 53.9
mIoU), inherited field by field (640 crops, shortest-edge resize 320..1280, the whole head, AdamW, poly, 8 x 2
images). Differences as in ``mask2former_convnext_t_512.py``. Weights: the official ImageNet-22k ConvNeXt-B at 224 px
(``convnext_base_22k_224.pth``), the file ConvNeXt's own 22k dense recipes (UperNet 640, Cascade) start from. Swin's
recipe takes its 384 px file because Swin's window (12) and relative-position tables are tied to the pre-training
resolution; a convolution has no such tie, and the official 384 px ConvNeXt-22k files are ImageNet-1k fine-tunes.
"""
_base_ = [
    'mmseg::mask2former/mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py',
    '../_base_/mask2former_convnext.py',
]
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

custom_imports = dict(imports=['convnext_dense'], allow_failed_imports=False)

arch = 'base'
pretrained = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext_base_22k_224.pth}}'
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
default_hooks = dict(checkpoint=_base_.checkpoint_hook)
train_cfg = dict(type=_base_.iter_train_loop)
val_cfg = dict(type=_base_.val_loop)
test_cfg = dict(type=_base_.test_loop)
