"""UperNet + ConvNeXt V2-H, ImageNet-22k fine-tuned weights (``convnextv2_huge_22k_512_ema.pt``), ADE20K 640x640,
160k iters (published mIoU: 57.0; Woo et al., CVPR 2023, Table 7).

The file is our choice: the paper says "IN-22K fine-tuned" without naming it; of the two published ImageNet-22k
V2-H files (384 and 512 px) we take the one fine-tuned closest to the 640 crop. Drop path 0.4 is our choice, not
published (the paper swept 0.1-0.4); lr, layer decay and precision: see ``_base_/upernet_convnext_v2.py``.
"""
_base_ = ['./_base_/upernet_convnext_640.py', './_base_/upernet_convnext_v2.py']
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

arch = 'huge'
channels = output_shape(arch).channels  # the heads' inputs follow the backbone's outputs
checkpoint_file = '{{$CONVNEXT_PRETRAINED:checkpoints/convnextv2_huge_22k_512_ema.pt}}'
model = dict(
    backbone=dict(arch=arch, **_base_.convnext_v2, drop_path_rate=0.4,
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=channels),
    auxiliary_head=dict(in_channels=channels[2]))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic', paramwise_cfg=_base_.v2_paramwise_cfg)
tta_pipeline = _base_.v2_tta_pipelines[640]
