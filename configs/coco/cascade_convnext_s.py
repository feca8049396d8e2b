"""Cascade Mask R-CNN, ConvNeXt-S, ImageNet-1k weights, COCO 3x (published: box AP 51.9, mask AP 45.0)."""
_base_ = ['./_base_/cascade_mask_rcnn_convnext.py']
import convnext_dense  # noqa: E402  (after _base_, so mmengine reads this as a plain config)

arch = 'small'
model = dict(
    backbone=dict(arch=arch, drop_path_rate=0.6,
                  init_cfg=dict(checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/convnext_small_1k_224.pth}}')),
    neck=dict(in_channels=list(convnext_dense.ARCH_SETTINGS[arch]['channels'])))
optim_wrapper = dict(
    paramwise_cfg=dict(decay_rate=0.7, num_layers=12),
    optimizer=dict(lr=2e-4))
