"""``configs/coco/mask2former_convnext_t_instance.py`` shrunk for tests: ConvNeXt-atto from scratch, a 32-channel
Mask2Former head with 8 queries, one pixel-decoder and two decoder layers, 64 px images of the synthetic COCO layout
(``convnext_dense.synthetic.coco.write_coco_demo(root, ..., size=64)``, COCO_DEMO_ROOT=root/), four iterations.

Everything else is the recipe's: the constructor and its paramwise settings, the losses and matcher, the guarantees.
"""
_base_ = ['../../configs/coco/mask2former_convnext_t_instance.py']
from convnext_dense.synthetic.scenes import SHAPES  # noqa: E402

classes = SHAPES
size = (64, 64)
width = 32
head = dict(
    num_things_classes=len(classes), num_stuff_classes=0, feat_channels=width, out_channels=width, num_queries=8,
    pixel_decoder=dict(encoder=dict(num_layers=1, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=width, num_heads=2), ffn_cfg=dict(embed_dims=width, feedforward_channels=64))),
        positional_encoding=dict(num_feats=width // 2)),
    positional_encoding=dict(num_feats=width // 2),
    transformer_decoder=dict(num_layers=2, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=width, num_heads=2), cross_attn_cfg=dict(embed_dims=width, num_heads=2),
        ffn_cfg=dict(embed_dims=width, feedforward_channels=64))),
    loss_cls=dict(class_weight=[1.0] * len(classes) + [0.1]))
model = dict(
    data_preprocessor=dict(batch_augments=[dict(_base_.batch_augments[0], size=size)]),
    backbone=dict(arch='atto', drop_path_rate=0.0, init_cfg=None),
    panoptic_head=dict(in_channels=[40, 80, 160, 320], **head),  # atto's output_shape (checked by the test)
    panoptic_fusion_head=dict(num_things_classes=len(classes), num_stuff_classes=0),
    train_cfg=dict(num_points=256),
    test_cfg=dict(max_per_image=8))

data_root = '{{$COCO_DEMO_ROOT:data/coco_demo/}}'
metainfo = dict(classes=classes)
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(loader, dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(loader, dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
max_iters = 4
param_scheduler = dict(end=max_iters, milestones=[max_iters])
train_cfg = dict(max_iters=max_iters, val_interval=max_iters, dynamic_intervals=None)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=max_iters))
log_processor = dict(window_size=1)
