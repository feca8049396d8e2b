"""``configs/ade20k/mask2former_convnext_t_512.py`` shrunk for tests (``m2f_shrink.py``) on 64 px images of the
synthetic ADE20K layout (``convnext_dense.synthetic.ade.write_ade_demo(root, ..., size=64)``, ADE_DEMO_ROOT=root).

Everything else is the recipe's: the constructor and its paramwise settings, the losses and matcher, the guarantees.
"""
_base_ = ['../../configs/ade20k/mask2former_convnext_t_512.py', './m2f_shrink.py']
from convnext_dense.synthetic import ade  # noqa: E402

classes = ade.CLASSES
model = dict(
    data_preprocessor=dict(size=_base_.m2f_size),
    backbone=_base_.m2f_backbone,
    decode_head=dict(num_classes=len(classes), loss_cls=dict(class_weight=[1.0] * len(classes) + [0.1]),
                     train_cfg=dict(num_points=_base_.m2f_num_points), **_base_.m2f_head))

dataset = dict(
    type='BaseSegDataset', data_root='{{$ADE_DEMO_ROOT:data/ade_demo}}', metainfo=dict(classes=classes),
    img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True)
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(_base_.m2f_loader, dataset=dict(
    _delete_=True, data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
    pipeline=pipeline, **dataset))
val_dataloader = dict(_base_.m2f_loader, dataset=dict(
    _delete_=True, data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
    pipeline=pipeline, **dataset))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=_base_.m2f_iters, val_interval=_base_.m2f_iters + 1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=_base_.m2f_iters, save_best=None))
log_processor = dict(window_size=1)
