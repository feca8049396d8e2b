"""DINO-4scale + ConvNeXt-L, ImageNet-22k -> 1k 384 px weights, COCO 12 epochs
(published: box AP 55.5, detrex's ``projects/dino/README.md``, from
``projects/dino/configs/dino-convnext/dino_convnext_large_384_4scale_12ep.py``).
"""
_base_ = ['./_base_/dino_convnext.py']
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

arch = 'large'
model = dict(
    backbone=dict(arch=arch,
                  init_cfg=dict(checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/convnext_large_22k_1k_384.pth}}')),
    neck=dict(in_channels=list(output_shape(arch, _base_.convnext.out_indices).channels)))
