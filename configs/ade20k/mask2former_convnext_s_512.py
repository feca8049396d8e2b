"""Mask2Former + ConvNeXt-S, ADE20K 512x512, 160k iterations: mmseg 1.2.2's Swin-S recipe with our backbone.

Source: mmseg's ``mask2former_swin-s_8xb2-160k_ade20k-512x512.py`` (published with Swin-S: 51.24 mIoU), which is its
Swin-T recipe with the deeper backbone; so is this file on ``mask2former_convnext_t_512.py``.
"""
_base_ = ['./mask2former_convnext_t_512.py']
from convnext_dense import output_shape  # noqa: E402

arch = 'small'
pretrained = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext_small_1k_224.pth}}'
model = dict(
    backbone=dict(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=list(output_shape(arch).channels)))
