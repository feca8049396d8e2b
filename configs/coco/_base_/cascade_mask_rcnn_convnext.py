"""Cascade Mask R-CNN, ConvNeXt-T backbone, ImageNet-1k weights: the published COCO 3x recipe (Liu et al., CVPR 2022).

Source: the official ``cascade_mask_rcnn_convnext_tiny_patch4_window7_mstrain_480-800_giou_4conv1f_adamw_3x_coco``
config (box AP 50.4, mask AP 43.7), as ported in mmdet 3.3.0. Backbone, data, schedule and optimizer come from
``convnext_coco_3x.py``; size variants override the backbone's arch, drop path and weights, the neck's inputs
(``output_shape``), lr and decay.
"""
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py',
    './convnext_coco_3x.py',
]
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

# SyncBN in the box heads as published; mmengine's Runner turns SyncBN into BN when it runs without a
# distributed launcher (one process, e.g. CPU), so the same config also trains and tests there.
head_norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(_delete_=True, **_base_.convnext),
    neck=dict(in_channels=list(output_shape(_base_.convnext.arch).channels)),
    roi_head=dict(bbox_head=[
        dict(type='ConvFCBBoxHead',
             num_shared_convs=4,
             num_shared_fcs=1,
             in_channels=256,
             conv_out_channels=256,
             fc_out_channels=1024,
             roi_feat_size=7,
             num_classes=80,
             bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4, target_stds=stds),
             reg_class_agnostic=False,
             reg_decoded_bbox=True,
             norm_cfg=head_norm_cfg,
             loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
             loss_bbox=dict(type='GIoULoss', loss_weight=10.0))
        # the three cascade stages differ only in their regression target scales
        for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
    ]))
