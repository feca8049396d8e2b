"""UperNet + ConvNeXt V2-L, ImageNet-1k fine-tuned weights (``convnextv2_large_1k_224_ema.pt``), ADE20K 512x512,
160k iters (published mIoU: 53.7; Woo et al., CVPR 2023, Table 7).

Drop path 0.4 is our choice, not published (the paper swept 0.1-0.4; 0.4 is the V1 L recipe's); lr, layer decay and
precision: see ``_base_/upernet_convnext_v2.py``.
"""
_base_ = ['./_base_/upernet_convnext_512.py', './_base_/upernet_convnext_v2.py']
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

arch = 'large'
channels = output_shape(arch).channels  # the heads' inputs follow the backbone's outputs
checkpoint_file = '{{$CONVNEXT_PRETRAINED:checkpoints/convnextv2_large_1k_224_ema.pt}}'
model = dict(
    backbone=dict(arch=arch, **_base_.convnext_v2, drop_path_rate=0.4,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=channels),
    auxiliary_head=dict(in_channels=channels[2]))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', paramwise_cfg=_base_.v2_paramwise_cfg)
tta_pipeline = _base_.v2_tta_pipelines[512]
