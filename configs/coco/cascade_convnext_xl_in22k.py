"""Cascade Mask R-CNN, ConvNeXt-XL, ImageNet-22k weights, COCO 3x (published: box AP 55.2, mask AP 47.7)."""
_base_ = ['./_base_/cascade_mask_rcnn_convnext.py']
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

arch = 'xlarge'
model = dict(
    backbone=dict(arch=arch, drop_path_rate=0.8,
                  init_cfg=dict(checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/convnext_xlarge_22k_224.pth}}')),
    neck=dict(in_channels=list(output_shape(arch).channels)))
optim_wrapper = dict(
    type='OptimWrapper',  # fp32 as published for L/XL
    paramwise_cfg=dict(decay_rate=0.7),
    optimizer=dict(lr=1e-4))
