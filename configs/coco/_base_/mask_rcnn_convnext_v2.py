"""Mask R-CNN + ConvNeXt V2 (GRN blocks, no layer scale) on COCO: the ConvNeXt V2 paper's detection recipe (Woo et
al., CVPR 2023, Appendix A.3; published box / mask AP: B 52.9 / 46.6, L 54.4 / 47.7, H 55.7 / 48.9).

Large-scale jitter at 1024 x 1024 (resize by 0.1-2.0, absolute crop, padding to 1024), 36 epochs with lr x0.1 after
epochs 27 and 33, 32 images per iteration (4 per GPU x 8), AdamW lr 1e-4 weight decay 0.05 with layer-wise lr decay,
AMP, soft-NMS in the R-CNN test stage; initialised from the official FCMAE (self-supervised) files, as the paper's
detection recipe and mmdet 3.3's reproduction (``projects/ConvNeXt-V2/configs/mask-rcnn_convnext-v2-b_fpn_lsj-3x-
fcmae_coco.py``, a pre-release: 52.9 / 46.4) do. The pipeline, padding and 1000-iteration warmup are that
reproduction's (the paper does not state them). This base is the V2-B recipe (layer decay 0.95 and drop path 0.4, as
in mmdet's reproduction); the L and H configs override arch, weights, drop path and decay rate. The rest (data root,
optimizer constructor, run-time guarantees) comes from ``convnext_coco_3x.py``.
"""
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './convnext_coco_3x.py',
]
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

arch = 'base'
image_size = (1024, 1024)
model = dict(
    # padding every batch to 1024 x 1024 (images and masks), as mmdet's large-scale-jitter configs do
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)]),
    backbone=dict(
        _base_.convnext,
        _delete_=True,
        arch=arch,
        drop_path_rate=0.4,
        layer_scale_init_value=0.0,  # V2: no layer scale
        use_grn=True,
        init_cfg=dict(type='Pretrained',
                      checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/convnextv2_base_1k_224_fcmae.pt}}')),
    neck=dict(in_channels=list(output_shape(arch).channels)),
    test_cfg=dict(rcnn=dict(nms=dict(type='soft_nms'))))  # iou_threshold 0.5 from mmdet's Mask R-CNN

# Large-scale jitter; FilterAnnotations drops boxes the crop reduced to (almost) nothing.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))  # per GPU, x 8 GPUs: 32 per iteration

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=_base_.max_epochs, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.95), optimizer=dict(lr=1e-4))  # num_layers derived: 12
auto_scale_lr = dict(base_batch_size=32)
