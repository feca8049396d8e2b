"""DINOv3's linear segmentation head as an mmseg decode head: the dense evaluation of DINOv3 (Simeoni et al., 2025).

Source: facebookresearch/dinov3 ``dinov3/eval/segmentation/models/heads/linear_head.py`` (``LinearHead`` with
``use_batchnorm=True``, ``use_cls_token=False``): Dropout2d(0.1), then (Sync)BatchNorm, then a 1x1 conv initialised
N(0, 0.01) with zero bias, on the backbone's features (several inputs are resized to the first one's size and
concatenated, as mmseg's ``input_transform='resize_concat'``). mmseg's ``BaseDecodeHead`` already owns the dropout,
the 1x1 conv (``conv_seg``) and that init; this head adds the BatchNorm between them, where DINOv3 has it.

Registered as ``convnext_dense.DINOv3LinearHead`` when a config first builds it (needs mmseg;
``convnext_dense.registry.TOOLKIT_MODELS``).
"""
from typing import List

from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from torch import Tensor

from ...utils.errors import ConfigError


class DINOv3LinearHead(BaseDecodeHead):
    """Dropout2d -> BatchNorm -> 1x1 conv over the (concatenated) input maps, as DINOv3's linear probe.

    Args:
        **kwargs: ``BaseDecodeHead``'s arguments. ``channels`` must equal the channels entering the conv (the input
            channels, or their sum for ``input_transform='resize_concat'``); ``norm_cfg`` is the BatchNorm
            (default ``dict(type='SyncBN')``, as DINOv3); ``dropout_ratio`` defaults to 0.1, as DINOv3.
    """

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault('norm_cfg', dict(type='SyncBN', requires_grad=True))
        super().__init__(**kwargs)
        entering = sum(self.in_channels) if self.input_transform == 'resize_concat' else self.in_channels
        if self.channels != entering:
            raise ConfigError(f'DINOv3LinearHead: channels={self.channels} must equal the channels of its input, '
                              f'{entering} (in_channels={self.in_channels}): the head is one 1x1 conv on them')
        self.bn = build_norm_layer(self.norm_cfg, self.channels)[1]

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """(N, C, H, W) class logits at the input maps' resolution."""
        x = self._transform_inputs(inputs)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.conv_seg(self.bn(x))
