"""Mask R-CNN, ConvNeXt-T, ImageNet-1k weights, COCO 3x (published: box AP 46.2, mask AP 41.7).

Source: the official ``mask_rcnn_convnext_tiny_patch4_window7_mstrain_480-800_adamw_3x_coco`` config, as ported in
mmdet 3.3.0. Standard FPN Mask R-CNN heads from mmdet; backbone, data, schedule and optimizer from
``_base_/convnext_coco_3x.py``, which also says how to name the pretrained weights or train from scratch.
"""
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/convnext_coco_3x.py',
]
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

model = dict(
    backbone=dict(_delete_=True, **_base_.convnext),
    neck=dict(in_channels=list(output_shape(_base_.convnext.arch).channels)))
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.95), optimizer=dict(lr=1e-4))
