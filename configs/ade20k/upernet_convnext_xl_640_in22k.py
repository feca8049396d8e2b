"""UperNet + ConvNeXt-XL, ImageNet-22k weights, ADE20K 640x640, 160k iters (published mIoU ss / ms: 53.6 / 54.0)."""
_base_ = ['./_base_/upernet_convnext_640.py']
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

arch = 'xlarge'
channels = output_shape(arch).channels  # the heads' inputs follow the backbone's outputs
checkpoint_file = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext_xlarge_22k_224.pth}}'
model = dict(
    backbone=dict(arch=arch, drop_path_rate=0.4, init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=channels),
    auxiliary_head=dict(in_channels=channels[2]))
# fp32 (the base's OptimWrapper), as published
optim_wrapper = dict(optimizer=dict(lr=8e-5))  # published for xlarge
