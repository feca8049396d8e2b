"""CPU demo: UperNet with a ConvNeXt-atto backbone, trained from scratch on synthetic shapes in the ADE20K layout.

`make demo-seg` writes the data (``python -m convnext_dense.synthetic.ade data/ade_demo``: 128 px images of circles,
squares, triangles and stars over textured backgrounds; background is a class), trains this config with
tools/train.py and tests it with tools/test.py. The recipe's structure is kept (UperNet + auxiliary FCN head, AdamW,
linear warmup then poly, single-scale test, multi-scale + flip TTA); every change says why.
No pretrained weights: init_cfg=None. A single process turns the heads' SyncBN into BN.
"""
_base_ = ['./_base_/upernet_convnext.py']
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)
from convnext_dense.synthetic import ade  # noqa: E402

arch = 'atto'  # the smallest ConvNeXt: fits a 2-core CPU budget
channels = output_shape(arch).channels
classes = ade.CLASSES
max_iters = 2500  # 20k images: telling the shapes apart (not finding them) is what takes the iterations

model = dict(
    data_preprocessor=dict(size_divisor=32),  # whole images, not crops: pad to the backbone's stride
    backbone=dict(
        arch=arch,
        drop_path_rate=0.0,  # a short training run does not need the regulariser
        # layer_scale_init_value stays the base's 1.0, not the official 1e-6 for training from scratch, so that the
        # blocks contribute from the first iterations of a short run
        init_cfg=None),  # no pretrained weights on this machine
    # 32 head channels instead of 512 / 256: at stride 4 the UperNet head would otherwise cost more than the backbone
    decode_head=dict(in_channels=channels, channels=32, num_classes=len(classes)),
    auxiliary_head=dict(in_channels=channels[2], channels=32, num_classes=len(classes)),
    test_cfg=dict(mode='whole'))  # 128 px images fit one window

data_root = '{{$ADE_DEMO_ROOT:data/ade_demo}}'
dataset = dict(
    type='BaseSegDataset',  # ADE20KDataset fixes its 150 class names; the layout and label convention are the same
    data_root=data_root,
    metainfo=dict(classes=classes, palette=ade.PALETTE),
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True)
# flip only: the generator already varies size, rotation, colour and texture; 128 px images need no crop
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug',
         transforms=[[dict(type='Resize', scale_factor=r, keep_ratio=True) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)],
                     [dict(type='RandomFlip', prob=0.0, direction='horizontal'),
                      dict(type='RandomFlip', prob=1.0, direction='horizontal')],
                     [dict(type='LoadAnnotations')],
                     [dict(type='PackSegInputs')]]),
]
train_dataloader = dict(
    batch_size=8,  # one process instead of 8 GPUs x 2
    num_workers=1,  # the model uses both cores; one worker keeps up with 128 px images
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(dataset, data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optim_wrapper = dict(
    # 80x the recipe's 1e-4 (fine-tuning): from scratch with a short schedule the shape classes separate only at a
    # high lr (measured on the demo val split after 1500 iterations: lr 2e-3 mIoU 36.7, 4e-3 52.1, 8e-3 60.6)
    optimizer=dict(lr=8e-3),
    paramwise_cfg=dict(decay_rate=1.0))  # no lr decay: no pretrained lower layers to protect
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=100),  # warmup scaled to the schedule
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=100, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters // 4)  # validation shows progress
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
