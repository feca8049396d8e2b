"""Mask2Former + ConvNeXt-L, ImageNet-22k weights, ADE20K 640x640, 160k iterations: mmseg 1.2.2's Swin-L in22k recipe.

Source: mmseg's ``mask2former_swin-l-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py`` (published with Swin-L: 56.01
mIoU), which is its Swin-B recipe with the larger backbone (100 queries kept); so is this file on
``mask2former_convnext_b_640_in22k.py``. Weights: ``convnext_large_22k_224.pth`` (224 px: why in the B file).
"""
_base_ = ['./mask2former_convnext_b_640_in22k.py']
from convnext_dense import output_shape  # noqa: E402

arch = 'large'
pretrained = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext_large_22k_224.pth}}'
model = dict(
    backbone=dict(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=list(output_shape(arch).channels)))
