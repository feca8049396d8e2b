"""Mask2Former + ConvNeXt-B, ImageNet-22k weights, COCO panoptic segmentation, 50 epochs LSJ: mmdet 3.3.0's Swin-B
in21k recipe with our backbone.

Source: mmdet's ``configs/mask2former/mask2former_swin-b-p4-w12-384-in21k_8xb2-lsj-50e_coco-panoptic.py``
(published with Swin-B in21k: PQ 56.3, box AP 50.0, mask AP 46.3; no ConvNeXt + Mask2Former result is published),
which is its Swin-T panoptic recipe with the larger backbone (window 12, 384 px ImageNet-21k weights) and nothing
else; so is this file on ``mask2former_convnext_t_panoptic.py``. Weights at 224 px: the ImageNet-22k file
ConvNeXt's own 22k dense recipes start from; Swin takes its 384 px file because its window (12) and relative-position
tables are tied to the pre-training resolution, a convolution has no such tie (and the official 384 px ConvNeXt-22k
files are ImageNet-1k fine-tunes).
"""
_base_ = ['./mask2former_convnext_t_panoptic.py']
from convnext_dense import output_shape  # noqa: E402

arch = 'base'
pretrained = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext_base_22k_224.pth}}'
model = dict(
    backbone=dict(arch=arch, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    panoptic_head=dict(in_channels=list(output_shape(arch).channels)))
