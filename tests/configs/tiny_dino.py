"""The DINO-ConvNeXt-T recipe (``configs/coco/dino_convnext_t_384_4scale_12ep.py``) shrunk for tests: a 4-block
backbone (its stages 1-3 read, as the recipe's) initialised from the official-layout file CONVNEXT_PRETRAINED names,
the recipe's 256-channel neck and transformer (mmdet's DINO decoder fixes 256: its query sine embedding has 4 x 128
features) with 1 encoder and 2 decoder layers of a 64-channel FFN, 20 queries and 10 denoising queries, the recipe's
pipelines at a tenth of their sizes (48..80 px), one epoch, the demo's shapes as classes.

Data: ``convnext_dense.synthetic.coco.write_coco_demo(root, ..., size=64)`` (COCO's layout) with COCO_ROOT=root/.
"""
_base_ = ['../../configs/coco/dino_convnext_t_384_4scale_12ep.py']
from convnext_dense import output_shape  # noqa: E402
from convnext_dense.synthetic import scenes  # noqa: E402

tiny = dict(depths=(1, 1, 1, 1), channels=(16, 32, 64, 128))
classes = scenes.SHAPES
ffn = dict(feedforward_channels=64)
model = dict(
    num_queries=20,
    backbone=dict(arch=dict(_delete_=True, **tiny)),
    neck=dict(in_channels=list(output_shape(tiny, _base_.convnext.out_indices).channels)),
    encoder=dict(num_layers=1, layer_cfg=dict(ffn_cfg=ffn)),
    decoder=dict(num_layers=2, layer_cfg=dict(ffn_cfg=ffn)),
    bbox_head=dict(num_classes=len(classes)),
    dn_cfg=dict(group_cfg=dict(num_dn_queries=10)),
    test_cfg=dict(max_per_img=20))


def shrink(transform):
    """A pipeline step at a tenth of its sizes: (480, 1333) -> (48, 133), crop (384, 600) -> (38, 60)."""
    if transform['type'] == 'RandomChoice':
        return dict(transform, transforms=[[shrink(t) for t in branch] for branch in transform['transforms']])
    if 'scales' in transform:
        return dict(transform, scales=[(a // 10, b // 10) for a, b in transform['scales']])
    for key in ('scale', 'crop_size'):
        if key in transform:
            return dict(transform, **{key: tuple(s // 10 for s in transform[key])})
    return transform


metainfo = dict(classes=classes)
loader = dict(batch_size=2, num_workers=0, persistent_workers=False, pin_memory=False)
train_dataloader = dict(loader, dataset=dict(metainfo=metainfo, pipeline=[shrink(t) for t in _base_.train_pipeline]))
val_dataloader = dict(loader, dataset=dict(metainfo=metainfo, pipeline=[shrink(t) for t in _base_.test_pipeline]))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
log_processor = dict(window_size=1)
