"""``configs/ade20k/mask2former_convnext_t_512.py`` shrunk for tests: ConvNeXt-atto from scratch, a 32-channel
Mask2Former head with 8 queries, one pixel-decoder and two decoder layers, 64 px images of the synthetic ADE20K
layout (``convnext_dense.synthetic.ade.write_ade_demo(root, ..., size=64)``, ADE_DEMO_ROOT=root), four iterations.

Everything else is the recipe's: the constructor and its paramwise settings, the losses and matcher, the guarantees.
"""
_base_ = ['../../configs/ade20k/mask2former_convnext_t_512.py']
from convnext_dense.synthetic import ade  # noqa: E402

classes = ade.CLASSES
size = (64, 64)
width = 32
head = dict(
    num_classes=len(classes), feat_channels=width, out_channels=width, num_queries=8,
    pixel_decoder=dict(encoder=dict(num_layers=1, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=width, num_heads=2), ffn_cfg=dict(embed_dims=width, feedforward_channels=64))),
        positional_encoding=dict(num_feats=width // 2)),
    positional_encoding=dict(num_feats=width // 2),
    transformer_decoder=dict(num_layers=2, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=width, num_heads=2), cross_attn_cfg=dict(embed_dims=width, num_heads=2),
        ffn_cfg=dict(embed_dims=width, feedforward_channels=64))),
    loss_cls=dict(class_weight=[1.0] * len(classes) + [0.1]),
    train_cfg=dict(num_points=256))
model = dict(
    data_preprocessor=dict(size=size),
    backbone=dict(arch='atto', drop_path_rate=0.0, init_cfg=None),
    decode_head=dict(in_channels=[40, 80, 160, 320], **head))  # atto's output_shape (checked by the test)

dataset = dict(
    type='BaseSegDataset', data_root='{{$ADE_DEMO_ROOT:data/ade_demo}}', metainfo=dict(classes=classes),
    img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True)
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = dict(loader, dataset=dict(
    _delete_=True, data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
    pipeline=pipeline, **dataset))
val_dataloader = dict(loader, dataset=dict(
    _delete_=True, data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
    pipeline=pipeline, **dataset))
test_dataloader = val_dataloader
max_iters = 4
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=max_iters, save_best=None),
                     visualization=dict(type='SegVisualizationHook'))
log_processor = dict(window_size=1)
