"""The roadmap's UperNet config shrunk for tests: a small path of its own (as ``tiny_roadmap_det.py``), 16-channel
heads, 2 synthetic 64 px images in one iteration, no evaluation. The step comes from ``--cfg-options
model.backbone.step=...``, as in the shipped config.

Data: ``convnext_dense.synthetic.ade.write_ade_demo(root, num_train=4, ..., size=64)`` with ADE_DEMO_ROOT=root.
"""
_base_ = ['../../configs/roadmap/upernet_roadmap_512_160k.py']
from convnext_dense.synthetic import ade  # noqa: E402

model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(regime=dict(_delete_=True, depths=(1, 1, 2, 1), stage_ratio=(1, 1, 1, 1), ratio_width=4, wide=8),
                  drop_path_rate=0.1, init_cfg=None),
    decode_head=dict(channels=16, num_classes=len(ade.CLASSES)),
    auxiliary_head=dict(channels=16, num_classes=len(ade.CLASSES)),
    test_cfg=dict(mode='whole'))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
dataset = dict(type='BaseSegDataset', data_root='{{$ADE_DEMO_ROOT:data/ade_demo}}',
               metainfo=dict(classes=ade.CLASSES, palette=ade.PALETTE), img_suffix='.jpg', seg_map_suffix='.png',
               reduce_zero_label=True,
               data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
               pipeline=pipeline)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(_delete_=True, **dataset))
train_cfg = dict(max_iters=1)  # one iteration
val_dataloader, val_cfg, val_evaluator = None, None, None  # no evaluation
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=1)]
amp_only = ('type', 'loss_scale')
optim_wrapper = dict(_delete_=True, **{k: v for k, v in _base_.optim_wrapper.items() if k not in amp_only},
                     type='OptimWrapper')  # AMP needs a GPU
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
log_processor = dict(window_size=1)
