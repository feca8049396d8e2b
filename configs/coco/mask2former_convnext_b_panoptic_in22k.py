"""Mask2Former + ConvNeXt-B, COCO panoptic segmentation, 50 epochs LSJ: mmdet 3.3.0's Swin-B in21k recipe.

Source: mmdet's ``configs/mask2former/mask2former_swin-b-p4-w12-384-in21k_8xb2-lsj-50e_coco-panoptic.py`` (published
with Swin-B in21k: PQ 56.3, box AP 50.0, mask AP 46.3; no ConvNeXt + Mask2Former result is published), inherited
field by field: the whole head (133 classes, 80 things + 53 stuff, the deformable pixel decoder, 9 decoder layers,
losses, matcher), LSJ at 1024 x 1024, AdamW lr 1e-4 weight decay 0.05, gradient clipping 0.01, the step schedule, the
panoptic + instance test and evaluators. Differences: the backbone (ConvNeXt-B, ImageNet-22k weights), the head's
``in_channels`` from ``output_shape``, the parameter-wise settings of ``../_base_/mask2former_convnext.py`` (why:
there), the data root ``$COCO_ROOT``, our guarantees. Weights at 224 px: the ImageNet-22k file ConvNeXt's own 22k
dense recipes start from; Swin takes its 384 px file because its window (12) and relative-position tables are tied to
the pre-training resolution, a convolution has no such tie (and the official 384 px ConvNeXt-22k files are
ImageNet-1k fine-tunes). Panoptic data needs the ``panopticapi`` module (README: Panoptic segmentation).
"""
_base_ = [
    'mmdet::mask2former/mask2former_swin-b-p4-w12-384-in21k_8xb2-lsj-50e_coco-panoptic.py',
    '../_base_/mask2former_convnext.py',
]
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

custom_imports = dict(imports=['convnext_dense'], allow_failed_imports=False)

arch = 'base'
pretrained = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext_base_22k_224.pth}}'
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
