"""UperNet + ConvNeXt on ADE20K: what every size shares in the published recipe.

Source: the official ConvNeXt ``semantic_segmentation/`` configs and mmseg 1.2.2's ``configs/convnext/``: UperNet
head (pool scales 1, 2, 3, 6; 512 channels; dropout 0.1; SyncBN) plus an auxiliary FCN head on stage 2 (256
channels, loss weight 0.4), 150 classes; AdamW lr 1e-4, betas (0.9, 0.999), weight decay 0.05, stage-wise lr decay
0.9; 1500-iteration linear warmup from 1e-6x, then poly (power 1) to 0 at 160k iterations. The crop bases
(``upernet_convnext_{512,640}.py``) add the data; each size names its arch, drop path, weights, head inputs
(``output_shape``) and precision. A single process turns SyncBN into BN (mmengine's Runner does it). The run-time
guarantees come from ``../../_base_/reliability.py``.
"""
_base_ = [
    'mmseg::_base_/models/upernet_convnext.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    '../../_base_/reliability.py',
]
custom_imports = dict(imports=['convnext_dense'], allow_failed_imports=False)
default_hooks = dict(checkpoint=_base_.checkpoint_hook)
train_cfg = dict(type=_base_.iter_train_loop)
val_cfg = dict(type=_base_.val_loop)
test_cfg = dict(type=_base_.test_loop)

model = dict(
    backbone=dict(
        _delete_=True,  # mmseg's base names mmpretrain's ConvNeXt
        type='convnext_dense.ConvNeXt',
        out_indices=(0, 1, 2, 3),
        layer_scale_init_value=1.0),  # as in the published configs; pretrained gammas replace it
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))

optim_wrapper = dict(
    _delete_=True,  # mmseg's base is SGD
    type='OptimWrapper',  # the sizes trained with fp16 say so
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='convnext_dense.ConvNeXtLayerDecayOptimizerConstructor',
    # num_layers is left to the constructor, which derives the published L from the depths (6 tiny, 12 others)
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise'))
optimizer = None  # mmseg's schedule base leaves an unused SGD here; the optimizer is optim_wrapper.optimizer

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=1500, end=160000),
]
