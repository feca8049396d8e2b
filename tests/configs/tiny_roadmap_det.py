"""The roadmap's Mask R-CNN config shrunk for tests: a small path of its own (``regime``: blocks (1, 1, 2, 1) of width 4
-> (1, 1, 1, 1) of width 8, every step's design), 16-channel neck and heads, 4 synthetic 64 px images in one
iteration, no evaluation. The step comes from ``--cfg-options model.backbone.step=...``, as in the shipped config.

Data: ``convnext_dense.synthetic.coco.write_coco_demo(root, num_train=4, ..., size=64)`` with COCO_DEMO_ROOT=root/.
"""
_base_ = ['../../configs/roadmap/mask_rcnn_roadmap_1x.py']
from convnext_dense.synthetic.scenes import SHAPES  # noqa: E402

width = 16
gn = dict(type='GN', num_groups=4)
model = dict(
    backbone=dict(regime=dict(_delete_=True, depths=(1, 1, 2, 1), stage_ratio=(1, 1, 1, 1), ratio_width=4, wide=8),
                  drop_path_rate=0.1, init_cfg=None),
    neck=dict(out_channels=width, norm_cfg=gn),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=32, num_classes=len(SHAPES)),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width, num_classes=len(SHAPES))))
data_root = '{{$COCO_DEMO_ROOT:data/coco_demo/}}'
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs'),
]
dataset = dict(data_root=data_root, metainfo=dict(classes=SHAPES), pipeline=pipeline)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False, dataset=dataset)
train_cfg = dict(max_epochs=1)  # one iteration
val_dataloader, val_cfg, val_evaluator = None, None, None  # no evaluation
optim_wrapper = dict(type='OptimWrapper')  # AMP needs a GPU
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
log_processor = dict(window_size=1)
