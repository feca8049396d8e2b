"""Mask2Former + ConvNeXt-S, COCO instance segmentation, 50 epochs LSJ: mmdet 3.3.0's Swin-S recipe with our backbone.

Source: mmdet's ``mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py`` (published with Swin-S: box AP 49.3, mask AP
46.1), which is its Swin-T recipe with the deeper backbone; so is this file on ``mask2former_convnext_t_instance.py``.
"""
_base_ = ['./mask2former_convnext_t_instance.py']
from convnext_dense import output_shape  # noqa: E402

arch = 'small'
pretrained = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext_small_1k_224.pth}}'
model = dict(
    backbone=dict(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    panoptic_head=dict(in_channels=list(output_shape(arch).channels)))
