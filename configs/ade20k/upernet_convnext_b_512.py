"""UperNet + ConvNeXt-B, ImageNet-1k weights, ADE20K 512x512, 160k iters (published mIoU ss / ms: 49.1 / 49.9)."""
_base_ = ['./_base_/upernet_convnext_512.py']
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

arch = 'base'
channels = output_shape(arch).channels  # the heads' inputs follow the backbone's outputs
checkpoint_file = '{{$CONVNEXT_PRETRAINED:checkpoints/convnext_base_1k_224.pth}}'
model = dict(
    backbone=dict(arch=arch, drop_path_rate=0.4, init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=channels),
    auxiliary_head=dict(in_channels=channels[2]))
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')  # published in fp16
