"""``configs/coco/mask2former_convnext_t_panoptic.py`` shrunk for tests (``m2f_shrink.py``) on 64 px images of the
synthetic COCO panoptic layout (``convnext_dense.synthetic.panoptic.write_coco_panoptic_demo(root, ..., size=64)``,
COCO_DEMO_ROOT=root/: four shape things, one background stuff). Needs the ``panopticapi`` module.

Everything else is the recipe's: the constructor and its paramwise settings, the losses and matcher, the panoptic and
instance evaluators, the guarantees.
"""
_base_ = ['../../configs/coco/mask2former_convnext_t_panoptic.py', './m2f_shrink.py']
from convnext_dense.synthetic import panoptic  # noqa: E402

things, stuff = len(panoptic.SHAPES), len(panoptic.STUFF)
model = dict(
    data_preprocessor=dict(batch_augments=[dict(_base_.batch_augments[0], size=_base_.m2f_size)]),
    backbone=_base_.m2f_backbone,
    panoptic_head=dict(num_things_classes=things, num_stuff_classes=stuff,
                       loss_cls=dict(class_weight=[1.0] * (things + stuff) + [0.1]), **_base_.m2f_head),
    panoptic_fusion_head=dict(num_things_classes=things, num_stuff_classes=stuff),
    train_cfg=dict(num_points=_base_.m2f_num_points),
    # a 2-iteration model scores no query above the recipe's 0.8: keep them all, so that segments are written
    test_cfg=dict(max_per_image=8, object_mask_thr=0.0))

data_root = '{{$COCO_DEMO_ROOT:data/coco_demo/}}'
metainfo = dict(classes=panoptic.CLASSES, thing_classes=panoptic.SHAPES, stuff_classes=panoptic.STUFF)
train_pipeline = [  # the recipe's without the large-scale jitter to 1024 px
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [  # the recipe's without the resize to 1333 x 800
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(_base_.m2f_loader, dataset=dict(data_root=data_root, metainfo=metainfo,
                                                        pipeline=train_pipeline))
val_dataloader = dict(_base_.m2f_loader, dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic_val2017.json',
         seg_prefix=data_root + 'annotations/panoptic_val2017/'),
    dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val2017.json', metric=['bbox', 'segm']),
]
test_evaluator = val_evaluator
param_scheduler = dict(end=_base_.m2f_iters, milestones=[_base_.m2f_iters])
train_cfg = dict(max_iters=_base_.m2f_iters, val_interval=_base_.m2f_iters + 1, dynamic_intervals=None)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=_base_.m2f_iters))
log_processor = dict(window_size=1)
