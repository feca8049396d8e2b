"""``configs/coco/mask2former_convnext_t_instance.py`` shrunk for tests (``m2f_shrink.py``) on 64 px images of the
synthetic COCO layout (``convnext_dense.synthetic.coco.write_coco_demo(root, ..., size=64)``, COCO_DEMO_ROOT=root/).

Everything else is the recipe's: the constructor and its paramwise settings, the losses and matcher, the guarantees.
"""
_base_ = ['../../configs/coco/mask2former_convnext_t_instance.py', './m2f_shrink.py']
from convnext_dense.synthetic.scenes import SHAPES  # noqa: E402

classes = SHAPES
model = dict(
    data_preprocessor=dict(batch_augments=[dict(_base_.batch_augments[0], size=_base_.m2f_size)]),
    backbone=_base_.m2f_backbone,
    panoptic_head=dict(num_things_classes=len(classes), num_stuff_classes=0,
                       loss_cls=dict(class_weight=[1.0] * len(classes) + [0.1]), **_base_.m2f_head),
    panoptic_fusion_head=dict(num_things_classes=len(classes), num_stuff_classes=0),
    train_cfg=dict(num_points=_base_.m2f_num_points),
    test_cfg=dict(max_per_image=8))

data_root = '{{$COCO_DEMO_ROOT:data/coco_demo/}}'
metainfo = dict(classes=classes)
train_pipeline = [  # the recipe's without the large-scale jitter to 1024 px
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [  # the recipe's without the resize to 1333 x 800
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(_base_.m2f_loader, dataset=dict(data_root=data_root, metainfo=metainfo,
                                                        pipeline=train_pipeline))
val_dataloader = dict(_base_.m2f_loader, dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
param_scheduler = dict(end=_base_.m2f_iters, milestones=[_base_.m2f_iters])
train_cfg = dict(max_iters=_base_.m2f_iters, val_interval=_base_.m2f_iters + 1, dynamic_intervals=None)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=_base_.m2f_iters))
log_processor = dict(window_size=1)
