"""DINOv3 ConvNeXt-L (LVD-1689M), frozen, ADE20K linear probe, 512 crops, 40k iterations (published mIoU
47.8: DINOv3's model card).

Weights: Meta's file under ``checkpoints/`` (gated: requested from Meta), or ``$CONVNEXT_PRETRAINED``, e.g. timm's
ungated copy ``CONVNEXT_PRETRAINED=hf://timm/convnext_large.dinov3_lvd1689m`` (the ``hf`` extra) or the gated HF repo
``hf://facebook/dinov3-convnext-large-pretrain-lvd1689m``: each gives the same maps.
"""
_base_ = ['./_base_/linear_dinov3_convnext.py']
from convnext_dense import output_shape  # noqa: E402  (after _base_: mmengine then reads a plain, not a lazy, config)

arch = 'large'
channels = output_shape(arch, out_indices=(3,)).channels[0]  # the head's input: the last stage
model = dict(
    backbone=dict(arch=arch, init_cfg=dict(
        checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/dinov3_convnext_large_pretrain_lvd1689m-61fa432d.pth}}')),
    decode_head=dict(in_channels=channels, channels=channels))
