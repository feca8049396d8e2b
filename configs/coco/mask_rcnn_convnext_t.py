"""Mask R-CNN, ConvNeXt-T, ImageNet-1k weights, COCO 3x (published: box AP 46.2, mask AP 41.7).

Source: the official ``mask_rcnn_convnext_tiny_patch4_window7_mstrain_480-800_adamw_3x_coco`` config, as ported in
mmdet 3.3.0; numbers in ``reference/recipes.md``. Standard FPN Mask R-CNN heads from mmdet; data, schedule and
optimizer from ``_base_/convnext_coco_3x.py``. Pretrained weights and training from scratch: as in
``_base_/cascade_mask_rcnn_convnext.py`` (CONVNEXT_PRETRAINED, or `--cfg-options model.backbone.init_cfg=None`).
"""
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/convnext_coco_3x.py',
]
import convnext_dense  # noqa: E402  (after _base_, so mmengine reads this as a plain config)

arch = 'tiny'
model = dict(
    backbone=dict(
        _delete_=True,
        type='ConvNeXt',
        arch=arch,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,  # as published; the pretrained gamma overrides it
        init_cfg=dict(type='Pretrained',
                      checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/convnext_tiny_1k_224.pth}}')),
    neck=dict(in_channels=list(convnext_dense.ARCH_SETTINGS[arch]['channels'])))
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.95), optimizer=dict(lr=1e-4))
