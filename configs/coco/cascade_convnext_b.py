"""Cascade Mask R-CNN, ConvNeXt-B, ImageNet-1k weights, COCO 3x (published: box AP 52.7, mask AP 45.6)."""
_base_ = ['./_base_/cascade_mask_rcnn_convnext.py']
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

arch = 'base'
model = dict(
    backbone=dict(arch=arch, drop_path_rate=0.7,
                  init_cfg=dict(checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/convnext_base_1k_224.pth}}')),
    neck=dict(in_channels=list(output_shape(arch).channels)))
optim_wrapper = dict(
    paramwise_cfg=dict(decay_rate=0.8),
    optimizer=dict(lr=2e-4))
