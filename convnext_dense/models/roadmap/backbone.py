"""Every step of the roadmap of "A ConvNet for the 2020s" (Liu et al., CVPR 2022) as a multi-scale backbone.

The steps and what each changes are ``roadmap_arch``'s table. The two ends are exact: ``resnet`` is mmdet's
``ResNet`` (v1.5, pytorch style: the stride in the 3 x 3 convolution) with its parameter names (``conv1``, ``bn1``,
``layer{s}.{j}.conv1`` ... ``bn3``, ``downsample.{0,1}``), so torchvision's and mmdet's ImageNet weights load;
``separate_downsampling`` is ``ConvNeXt('tiny')`` (``'base'`` for the ResNet-200 regime) with its names, built by the
same code. Every step in between keeps mmdet's ResNet names, the norms named as mmdet's ``build_norm_layer`` names
them (``bn{k}``, ``ln{k}``). Where the paper leaves a detail open, the choices are (and the paper's FLOPs fit them):

* Patchify stem: the 4 x 4 stride-4 convolution alone, no norm, no activation: the paper replaces the whole stem
  cell (conv, BN, ReLU, max pool) by "a patchify layer", and only at the separate-downsampling step adds a norm
  "after the stem". It has a bias, as every convolution here that no norm follows.
* Downsampling before separate downsampling layers: the first block of a stage strides in its spatial convolution
  (once moved up: the depthwise one, so both 1 x 1 layers run at the lower resolution; striding in the first 1 x 1
  instead would cost ~1% more at kernel 11) and its shortcut is a 1 x 1 stride-2 convolution with a norm (BN, LN
  from the LayerNorm step on), the paper's "1x1 conv with stride 2 at the shortcut connection". A block whose input
  and output differ in width also gets that projection (ResNet's first block; none once the stem is as wide as
  stage 0, from the inverted bottleneck on). An inverted bottleneck's hidden width is 4x the stage's width (4x the
  input's in a stage's first block would cost ~4.12 G instead of Table 10's 4.64).
* Norms and activations: until ``fewer_*`` every convolution of a block is followed by a norm, and ReLU (GELU)
  follows the first two norms and the residual sum, as in ResNet. ``fewer_activations`` keeps the one between the
  1 x 1 layers (none after the sum), ``fewer_norms`` the one after the depthwise convolution; shortcut norms stay.
* Layer scale (of the modern recipe): from ``fewer_norms`` on, where a block's branch no longer ends in a norm; before
  it the last norm's affine weight is the same per-channel scale.
* Returned maps: as the stages leave them, until ``separate_downsampling`` adds ConvNeXt's LayerNorm on each (the
  paper adds LN "wherever spatial resolution is changed", the final pooling's included, at that step).
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ...specs.arch import DEFAULT_NORM_EPS, STEM_STRIDE, OutputShape, output_shape
from ...specs.roadmap import Design, RegimeSpec, design, stage_table
from ...utils.errors import ConfigError
from ..backbone import convnext_stages, drop_path_rates, freeze, trunc_normal_init
from ..base import InitCfg, InitWeightsModule
from ..layer_decay import block_layer_id, check_decay_type, convnext_layer_id, num_decay_layers
from ..layers import DropPath, LayerNorm2d, depthwise_weights_in_grad_strides


def _norm(d: Design, channels: int) -> nn.Module:
    return LayerNorm2d(channels, eps=DEFAULT_NORM_EPS) if d.layer_norm else nn.BatchNorm2d(channels)


class RoadmapBottleneck(nn.Module):
    """One residual block of a step before separate downsampling: three convolutions, their norms and activations,
    a shortcut (``downsample``: 1 x 1 convolution + norm where the stride or the width changes), drop path.

    ResNet's order: ``conv1`` 1x1 -> ``conv2`` kxk (stride, depthwise from that step on) -> ``conv3`` 1x1; moved up:
    ``conv1`` depthwise kxk (stride) -> ``conv2`` 1x1 up -> ``conv3`` 1x1 down.

    Args:
        d: The step's design.
        in_channels: Input channels.
        stage: The stage, for its widths.
        stride: 2 in the first block of stages 1..3, else 1.
        drop_path: Stochastic depth rate of this block.
        layer_scale_init_value: Initial layer scale (where the design has one, see the module docstring).
    """

    def __init__(self, d: Design, in_channels: int, stage: int, stride: int, drop_path: float,
                 layer_scale_init_value: float) -> None:
        super().__init__()
        out, hidden, k = d.channels(stage), d.hidden(stage), d.kernel
        if d.moved_up:
            specs = [(in_channels, in_channels, k, stride, in_channels), (in_channels, hidden, 1, 1, 1),
                     (hidden, out, 1, 1, 1)]
        else:
            specs = [(in_channels, hidden, 1, 1, 1), (hidden, hidden, k, stride, hidden if d.depthwise else 1),
                     (hidden, out, 1, 1, 1)]
        normed = (0,) if d.fewer_norms else (0, 1, 2)  # which convolutions a norm follows
        self.acts = (1,) if d.fewer_activations else (0, 1)  # after which convolutions an activation follows
        self.act_after_sum = not d.fewer_activations
        self.norm_names: List[Optional[str]] = []
        for i, (cin, cout, kernel, s, groups) in enumerate(specs):
            self.add_module(f'conv{i + 1}', nn.Conv2d(cin, cout, kernel, s, kernel // 2, groups=groups,
                                                      bias=i not in normed))
            name = f'{"ln" if d.layer_norm else "bn"}{i + 1}' if i in normed else None
            if name:
                self.add_module(name, _norm(d, cout))
            self.norm_names.append(name)
        self.act = nn.GELU() if d.gelu else nn.ReLU(inplace=True)
        self.gamma: Optional[nn.Parameter] = (
            nn.Parameter(torch.full((out,), float(layer_scale_init_value)))
            if d.fewer_norms and layer_scale_init_value > 0 else None)
        self.downsample: Optional[nn.Sequential] = None
        if stride != 1 or in_channels != out:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out, 1, stride, bias=False), _norm(d, out))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        y = x
        for i, norm in enumerate(self.norm_names):
            y = getattr(self, f'conv{i + 1}')(y)
            if norm:
                y = getattr(self, norm)(y)
            if i in self.acts:
                y = self.act(y)
        if self.gamma is not None:
            y = y * self.gamma[:, None, None]  # (C, 1, 1): per channel of an (N, C, H, W) map
        out = (x if self.downsample is None else self.downsample(x)) + self.drop_path(y)
        return self.act(out) if self.act_after_sum else out


class ConvNeXtRoadmap(InitWeightsModule):
    """The backbone of one roadmap step, returning stage-wise maps at strides 4, 8, 16, 32.

    Args:
        step: A name in ``ROADMAP_STEPS``. Default: 'separate_downsampling' (ConvNeXt).
        regime: 'resnet50' (ResNet-50 -> ConvNeXt-T), 'resnet200' (ResNet-200 -> ConvNeXt-B), or a dict with the
            fields of ``specs.roadmap.Regime`` (a smaller path of one's own). Default: 'resnet50'.
        in_channels: Channels of the input image. Default: 3.
        out_indices: Stages whose maps are returned, negative indices counting from the last stage. Stages after
            the last returned one are not built. Default: None (every stage).
        drop_path_rate: Stochastic depth rate, rising linearly from 0 over all blocks. Default: 0.
        layer_scale_init_value: Initial layer scale where the step has one (from ``fewer_norms`` on); <= 0 builds
            none. Default: 1e-6.
        frozen_stages: Freeze stages 0..frozen_stages as ``ConvNeXt`` does (stage 0 includes the stem: mmdet's
            ResNet ``frozen_stages=1`` is 0 here); -1 freezes nothing. Default: -1.
        norm_eval: Keep the BatchNorms in eval mode while training (frozen statistics), as mmdet trains ResNets;
            LayerNorms have no statistics. Default: False.
        with_cp: Recompute each block in the backward pass to save memory. Default: False.
        channels_last: Compute in channels-last memory format; the returned maps are contiguous NCHW either way.
            Default: True.
        init_cfg: What ``init_weights`` does, in mmengine's format (``models.base``): None, truncated-normal
            convolutions; ``dict(type='Pretrained', checkpoint=PATH, prefix=...)`` loads a file with this step's
            names (any ConvNeXt layout at ``separate_downsampling``, see ``convnext_dense.checkpoint``;
            torchvision's / mmdet's ResNet files at ``resnet``); mmengine's initializers where mmengine is
            installed. Default: None.
    """

    def __init__(self,
                 step: str = 'separate_downsampling',
                 regime: RegimeSpec = 'resnet50',
                 in_channels: int = 3,
                 out_indices: Optional[Sequence[int]] = None,
                 drop_path_rate: float = 0.0,
                 layer_scale_init_value: float = 1e-6,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 channels_last: bool = True,
                 init_cfg: InitCfg = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.step, self.regime = step, regime
        self.design = d = design(step, regime)
        stages = stage_table(d)
        self._output_shape = output_shape(stages, out_indices)
        self.out_indices = self._output_shape.indices
        self.arch_depths, self.arch_channels = stages['depths'], stages['channels']
        if not -1 <= frozen_stages < len(d.depths):
            raise ConfigError(f'frozen_stages={frozen_stages} is out of range; valid: -1 (none) to {len(d.depths) - 1}')
        if drop_path_rate < 0:
            raise ConfigError(f'drop_path_rate={drop_path_rate} must be >= 0')
        self.frozen_stages, self.norm_eval, self.with_cp, self.channels_last = (
            frozen_stages, norm_eval, with_cp, channels_last)
        num_stages = max(self.out_indices) + 1  # build only what is used
        if d.separate_downsampling:
            self.downsample_layers, self.stages = convnext_stages(
                in_channels, d.depths, self.arch_channels, num_stages, drop_path_rate, layer_scale_init_value, False)
            for i in self.out_indices:
                self.add_module(f'norm{i}', LayerNorm2d(self.arch_channels[i], eps=DEFAULT_NORM_EPS))
        else:
            self._build_resnet_layout(in_channels, num_stages, drop_path_rate, layer_scale_init_value)
        self.out_channels: Tuple[int, ...] = self._output_shape.channels
        self.out_strides: Tuple[int, ...] = self._output_shape.strides
        self.min_input_size = STEM_STRIDE * 2**(num_stages - 1)
        if channels_last:
            depthwise_weights_in_grad_strides(self)
        self._freeze_stages()

    def _build_resnet_layout(self, in_channels: int, num_stages: int, drop_path_rate: float,
                             layer_scale_init_value: float) -> None:
        """mmdet's ResNet names: the stem (``conv1``, ``bn1``, ``relu``, ``maxpool``), stages ``layer1..4``."""
        d = self.design
        if d.patchify:
            self.conv1 = nn.Conv2d(in_channels, d.width, kernel_size=4, stride=4)
            self.stem_names: Tuple[str, ...] = ('conv1',)
        else:
            self.conv1 = nn.Conv2d(in_channels, d.width, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(d.width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.stem_names = ('conv1', 'bn1', 'relu', 'maxpool')
        rates = drop_path_rates(drop_path_rate, d.depths)
        channels = d.width
        for i in range(num_stages):
            blocks = []
            for j in range(d.depths[i]):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(RoadmapBottleneck(d, channels, i, stride, rates[i][j],
                                                layer_scale_init_value))
                channels = d.channels(i)
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))

    def output_shape(self) -> OutputShape:
        """The stages this backbone returns, with the channels and stride of each map (``roadmap_output_shape``)."""
        return self._output_shape

    def _stage_parts(self) -> List[Tuple[List[nn.Module], nn.Sequential, Optional[nn.Module]]]:
        """Per built stage: what runs before its blocks (the stem or a downsample layer), the blocks, the output
        norm (or None)."""
        if self.design.separate_downsampling:
            return [([down], stage, getattr(self, f'norm{i}', None))
                    for i, (down, stage) in enumerate(zip(self.downsample_layers, self.stages))]
        stem = [getattr(self, name) for name in self.stem_names]
        return [(stem if i == 0 else [], getattr(self, f'layer{i + 1}'), None)
                for i in range(max(self.out_indices) + 1)]

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Map (N, in_channels, H, W) images to one (N, C_i, H / s_i, W / s_i) map per out index."""
        if min(x.shape[-2:]) < self.min_input_size:
            raise ConfigError(f'input of size {tuple(x.shape[-2:])} is too small for roadmap step {self.step!r}: '
                              f'height and width must be at least {self.min_input_size}')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outs = []
        for i, (before, blocks, norm) in enumerate(self._stage_parts()):
            for module in before:
                x = module(x)
            for block in blocks:
                x = checkpoint(block, x, use_reentrant=False) if self.with_cp and self.training else block(x)
            if i in self.out_indices:
                outs.append((norm(x) if norm else x).contiguous())  # NCHW: mmcv's RoIAlign misreads channels-last
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for before, blocks, norm in self._stage_parts()[:self.frozen_stages + 1]:
            freeze(before + [blocks] + ([norm] if norm else []))

    def train(self, mode: bool = True) -> 'ConvNeXtRoadmap':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def default_init(self) -> None:
        """Truncated-normal convolutions as ConvNeXt's (``trunc_normal_init``); the norms keep PyTorch's init."""
        trunc_normal_init(self)

    def load_pretrained(self, checkpoint: str, prefix: Optional[str] = None,
                        map_location: Union[str, torch.device, None] = 'cpu') -> None:
        """Load a file with this step's names (``roadmap.loading.load_roadmap_checkpoint``); init_cfg's path."""
        from .loading import load_roadmap_checkpoint  # lazy: the loader needs no model code
        load_roadmap_checkpoint(self, checkpoint, prefix=prefix, map_location=map_location)

    # Layer-wise learning-rate decay (``models.layer_decay`` asks these): ConvNeXt's rule, on these names.
    def num_layers(self) -> int:
        """L of ConvNeXt's rule for this step's depths (6 for ResNet-50 and (3, 3, 9, 3), 22 for ResNet-200)."""
        return num_decay_layers(self.arch_depths)

    def layer_id(self, name: str, decay_type: str, num_layers: int) -> int:
        """Decay layer id of parameter ``name`` (relative to this backbone).

        ``separate_downsampling``: ConvNeXt's. Before it: the stem (``conv1``, ``bn1``) is layer 0 and
        ``layer{s}.{j}`` is block j of stage s - 1, whose layer is its group of three blocks (the last stage: L), or
        for 'stage_wise' the stage + 1; the in-block shortcut belongs to its block. Everything else is L + 1.
        """
        if self.design.separate_downsampling:
            return convnext_layer_id(name, self.arch_depths, decay_type, num_layers)
        check_decay_type(decay_type)
        part, _, rest = name.partition('.')
        if part in self.stem_names:
            return 0
        if part.startswith('layer') and part[5:].isdigit():
            return block_layer_id(self.arch_depths, int(part[5:]) - 1, int(rest.partition('.')[0]), decay_type,
                                  num_layers)
        return num_layers + 1

