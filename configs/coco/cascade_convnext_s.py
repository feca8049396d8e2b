"""Cascade Mask R-CNN, ConvNeXt-S, ImageNet-1k weights, COCO 3x (published: box AP 51.9, mask AP 45.0)."""
_base_ = ['./_base_/cascade_mask_rcnn_convnext.py']
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

arch = 'small'
model = dict(
    backbone=dict(arch=arch, drop_path_rate=0.6,
                  init_cfg=dict(checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/convnext_small_1k_224.pth}}')),
    neck=dict(in_channels=list(output_shape(arch).channels)))
optim_wrapper = dict(
    paramwise_cfg=dict(decay_rate=0.7),
    optimizer=dict(lr=2e-4))
