"""Mask2Former + ConvNeXt-T, COCO panoptic segmentation, 50 epochs LSJ: mmdet 3.3.0's Swin-T recipe.

Source: mmdet's ``configs/mask2former/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py`` (published with
Swin-T: PQ 53.4, box AP 46.3, mask AP 43.4; no ConvNeXt + Mask2Former result is published), inherited field by field:
the whole head (133 classes, 80 things + 53 stuff, the deformable pixel decoder, 9 decoder layers, losses, matcher),
LSJ at 1024 x 1024, AdamW lr 1e-4 weight decay 0.05, gradient clipping 0.01, the step schedule, the panoptic +
instance test and evaluators. Differences: the backbone (ConvNeXt-T, ImageNet-1k weights), the head's ``in_channels``
from ``output_shape``, the parameter-wise settings of ``../_base_/mask2former_convnext.py`` (why: there), the data
root ``$COCO_ROOT``, our guarantees. Panoptic data needs the ``panopticapi`` module (docs/recipes.md, Mask2Former).
"""
_base_ = [
    'mmdet::mask2former/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic.py',
    '../_base_/mask2former_convnext.py',
]
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

custom_imports = dict(imports=['convnext_dense'], allow_failed_imports=False)

arch = 'tiny'
pretrained = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext_tiny_1k_224.pth}}'
model = dict(
    backbone=dict(_delete_=True, arch=arch, init_cfg=dict(type='Pretrained', checkpoint=pretrained),
                  **_base_.convnext_backbone),
    panoptic_head=dict(in_channels=list(output_shape(arch).channels)))

data_root = '{{$COCO_ROOT:data/coco/}}'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [  # the stock evaluators, their files under data_root
    dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic_val2017.json',
         seg_prefix=data_root + 'annotations/panoptic_val2017/', backend_args=None),
    dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val2017.json', metric=['bbox', 'segm'],
         backend_args=None),
]
test_evaluator = val_evaluator

optim_wrapper = dict(
    constructor='convnext_dense.ConvNeXtLayerDecayOptimizerConstructor',
    paramwise_cfg=dict(_delete_=True, **_base_.convnext_paramwise_cfg))  # the stock keys name Swin's parameters
default_hooks = dict(checkpoint=_base_.checkpoint_hook)  # interval 5000, last 3 kept, from the stock file
train_cfg = dict(type=_base_.iter_train_loop)
val_cfg = dict(type=_base_.val_loop)
test_cfg = dict(type=_base_.test_loop)
