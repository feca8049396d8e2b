"""Mask2Former + ConvNeXt-L, COCO panoptic segmentation, 100 epochs LSJ: mmdet 3.3.0's Swin-L in21k recipe.

Source: mmdet's ``configs/mask2former/mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py``
(published with Swin-L in21k: PQ 57.6, box AP 52.2, mask AP 48.5; no ConvNeXt + Mask2Former result is published),
inherited field by field: the whole head (133 classes, 80 things + 53 stuff, the deformable pixel decoder, 9 decoder
layers, losses, matcher), LSJ at 1024 x 1024, AdamW lr 1e-4 weight decay 0.05, gradient clipping 0.01, the step
schedule, the panoptic + instance test and evaluators. The stock L recipe's own changes are kept: 200 queries, 16
GPUs x 1 image, 737500 iterations. Differences: the backbone (ConvNeXt-L, ImageNet-22k weights), the head's
``in_channels`` from ``output_shape``, the parameter-wise settings of ``../_base_/mask2former_convnext.py`` (why:
there), the data root ``$COCO_ROOT``, our guarantees. Weights at 224 px: the ImageNet-22k file ConvNeXt's own 22k
dense recipes start from; Swin takes its 384 px file because its window (12) and relative-position tables are tied to
the pre-training resolution, a convolution has no such tie (and the official 384 px ConvNeXt-22k files are
ImageNet-1k fine-tunes). Panoptic data needs the ``panopticapi`` module (docs/recipes.md, Mask2Former).
"""
_base_ = [
    'mmdet::mask2former/mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic.py',
    '../_base_/mask2former_convnext.py',
]
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

custom_imports = dict(imports=['convnext_dense'], allow_failed_imports=False)

arch = 'large'
pretrained = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext_large_22k_224.pth}}'
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
