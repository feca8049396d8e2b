"""Multi-scale ConvNeXt backbone for dense prediction (V1: Liu et al., CVPR 2022; V2 with GRN: Woo et al., CVPR 2023).

The arch table (``convnext_dense.specs.arch``) and the layer-decay rule (``ConvNeXt.layer_id``) follow the official
ConvNeXt repository (``object_detection/`` and ``semantic_segmentation/``). Parameter names equal the official
ones (``downsample_layers.{i}.{0,1}``, ``stages.{i}.{j}.*``, ``norm{i}``), so official weights load without renaming.
"""
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..specs.arch import DEFAULT_NORM_EPS, STEM_STRIDE, Arch, OutputShape, arch_norm_eps, output_shape, resolve_arch
from ..utils.errors import ConfigError
from .base import InitCfg, InitWeightsModule
from .layer_decay import convnext_layer_id, num_decay_layers
from .layers import ConvNeXtBlock, LayerNorm2d, depthwise_weights_in_grad_strides


class ConvNeXt(InitWeightsModule):
    """ConvNeXt backbone returning stage-wise feature maps (strides 4, 8, 16, 32), each through its own LayerNorm.

    Args:
        arch: A name in ``ARCH_SETTINGS`` (atto ... huge, xxlarge) or a dict with equally long ``depths`` and
            ``channels`` (and optionally ``norm_eps``). Default: 'tiny'.
        in_channels: Channels of the input image. Default: 3.
        out_indices: Stages whose maps are returned, negative indices counting from the last stage. Stages after
            the last returned one are not built. Default: None (every stage).
        drop_path_rate: Stochastic depth rate, rising linearly from 0 over all blocks of the arch. Default: 0.
        layer_scale_init_value: Initial layer scale; <= 0 builds none (ConvNeXt V2). Default: 1e-6.
        use_grn: ConvNeXt V2 blocks with Global Response Normalization. Default: False.
        frozen_stages: Freeze the stem, the downsample layers, the blocks and the output norms of stages
            0..frozen_stages (kept in eval mode); -1 freezes nothing. Default: -1.
        with_cp: Recompute each block in the backward pass (activation checkpointing) to save memory. Default: False.
        channels_last: Compute in channels-last memory format (NHWC strides behind NCHW shapes), which is faster
            for the depthwise convolutions and the norms on GPU and CPU. Default: True. Either way the returned
            maps are contiguous NCHW: ops that index raw NCHW memory (mmcv's RoIAlign) silently misread
            channels-last tensors.
        norm_eps: The eps of every LayerNorm (stem, downsampling, blocks, output norms); None takes the arch's
            (``specs.arch.arch_norm_eps``: 1e-5 for xxlarge, else 1e-6). Default: None.
        init_cfg: What ``init_weights`` does, in mmengine's format (``models.base``): None, the official
            truncated-normal init; ``dict(type='Pretrained', checkpoint=PATH, prefix=...)`` loads any common ConvNeXt
            checkpoint layout (see ``convnext_dense.checkpoint``) from a local file, an http(s) URL or an hf:// name;
            mmengine's initializers (``Kaiming`` ...) where mmengine is installed. Default: None.
    """

    def __init__(self,
                 arch: Arch = 'tiny',
                 in_channels: int = 3,
                 out_indices: Optional[Sequence[int]] = None,
                 drop_path_rate: float = 0.0,
                 layer_scale_init_value: float = 1e-6,
                 use_grn: bool = False,
                 frozen_stages: int = -1,
                 with_cp: bool = False,
                 channels_last: bool = True,
                 norm_eps: Optional[float] = None,
                 init_cfg: InitCfg = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch_depths, self.arch_channels = resolve_arch(arch)
        num_arch_stages = len(self.arch_depths)
        self._output_shape = output_shape(arch, out_indices)
        self.out_indices = self._output_shape.indices
        if not -1 <= frozen_stages < num_arch_stages:
            raise ConfigError(f'frozen_stages={frozen_stages} is out of range; valid: -1 (none) '
                              f'to {num_arch_stages - 1}')
        if drop_path_rate < 0:
            raise ConfigError(f'drop_path_rate={drop_path_rate} must be >= 0')
        self.norm_eps = arch_norm_eps(arch) if norm_eps is None else norm_eps
        if not self.norm_eps > 0:
            raise ConfigError(f'norm_eps={norm_eps} must be > 0 (None takes the arch\'s, {arch_norm_eps(arch)})')
        eps = self.norm_eps
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp
        self.channels_last = channels_last

        num_stages = max(self.out_indices) + 1  # build only what is used
        self.downsample_layers, self.stages = convnext_stages(
            in_channels, self.arch_depths, self.arch_channels, num_stages, drop_path_rate, layer_scale_init_value,
            use_grn, eps)
        for i in self.out_indices:
            self.add_module(f'norm{i}', LayerNorm2d(self.arch_channels[i], eps=eps))

        self.out_channels: Tuple[int, ...] = self._output_shape.channels
        self.out_strides: Tuple[int, ...] = self._output_shape.strides
        self.min_input_size = STEM_STRIDE * 2**(num_stages - 1)
        if channels_last:
            depthwise_weights_in_grad_strides(self)
        self._freeze_stages()

    def output_shape(self) -> OutputShape:
        """The stages this backbone returns, with the channels and stride of each map (``specs.arch.output_shape``)."""
        return self._output_shape

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Map (N, in_channels, H, W) images to one (N, C_i, H / s_i, W / s_i) map per out index."""
        if min(x.shape[-2:]) < self.min_input_size:
            raise ConfigError(f'input of size {tuple(x.shape[-2:])} is too small for {len(self.stages)} ConvNeXt '
                              f'stages: height and width must be at least {self.min_input_size}')
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        outs = []
        for i, (down, stage) in enumerate(zip(self.downsample_layers, self.stages)):
            x = down(x)
            for block in stage:
                x = checkpoint(block, x, use_reentrant=False) if self.with_cp and self.training else block(x)
            if i in self.out_indices:
                outs.append(getattr(self, f'norm{i}')(x).contiguous())  # LayerNorm2d returns an NHWC-strided view
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for i in range(min(self.frozen_stages + 1, len(self.stages))):
            frozen = [self.downsample_layers[i], self.stages[i]]
            if i in self.out_indices:
                frozen.append(getattr(self, f'norm{i}'))
            freeze(frozen)

    def train(self, mode: bool = True) -> 'ConvNeXt':
        super().train(mode)
        self._freeze_stages()
        return self

    def default_init(self) -> None:
        """The official init (``trunc_normal_init``), what ``init_weights`` does without a Pretrained init_cfg."""
        trunc_normal_init(self)

    def load_pretrained(self, checkpoint: str, prefix: Optional[str] = None,
                        map_location: Union[str, torch.device, None] = 'cpu') -> None:
        """Load any common ConvNeXt checkpoint layout (``checkpoint.load_backbone_checkpoint``); init_cfg's path."""
        from ..checkpoint.loading import load_backbone_checkpoint  # lazy: the loader needs no model code
        load_backbone_checkpoint(self, checkpoint, prefix=prefix, map_location=map_location)

    # Layer-wise learning-rate decay: the backbone owns the knowledge of which layer a parameter belongs to.
    def num_layers(self) -> int:
        """The number of decay layers L of the official rule (``num_decay_layers``): 6 for tiny, 12 for 27 blocks."""
        return num_decay_layers(self.arch_depths)

    def layer_id(self, name: str, decay_type: str, num_layers: int) -> int:
        """Decay layer id of parameter ``name`` (relative to this backbone) under the official rule.

        Args:
            name: Parameter name, e.g. ``stages.2.7.pwconv1.weight``.
            decay_type: 'layer_wise' (groups of three blocks) or 'stage_wise' (one id per stage, downsample layers
                0).
            num_layers: L, the layer id of the last stage; parameters outside the stages get L + 1.
        """
        return convnext_layer_id(name, self.arch_depths, decay_type, num_layers)


def freeze(modules: Iterable[nn.Module]) -> None:
    """Eval mode and no gradients for ``modules`` (a frozen stage)."""
    for module in modules:
        module.eval()
        for param in module.parameters():
            param.requires_grad = False


def trunc_normal_init(model: nn.Module) -> None:
    """The official init: every convolution and linear weight from a truncated normal (std 0.02), biases zero."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def drop_path_rates(rate: float, depths: Sequence[int]) -> List[List[float]]:
    """Per stage, the drop-path rates of its blocks, rising linearly from 0 to ``rate`` over all blocks."""
    rates = torch.linspace(0, rate, sum(depths), device='cpu').tolist()  # also under torch.device('meta')
    return [rates[sum(depths[:i]):sum(depths[:i + 1])] for i in range(len(depths))]


def convnext_stages(in_channels: int, depths: Sequence[int], channels: Sequence[int], num_stages: int,
                    drop_path_rate: float, layer_scale_init_value: float, use_grn: bool, eps: float = DEFAULT_NORM_EPS
                    ) -> Tuple[nn.ModuleList, nn.ModuleList]:
    """ConvNeXt's ``downsample_layers`` (the 4x4 patchify stem, then LayerNorm + 2x2 stride-2 convolutions) and
    ``stages`` of blocks, for the first ``num_stages`` stages; drop path rises linearly over all blocks of ``depths``;
    ``eps`` is every LayerNorm's.
    """
    rates = drop_path_rates(drop_path_rate, depths)
    downsample_layers, stages = nn.ModuleList(), nn.ModuleList()
    for i in range(num_stages):
        c = channels[i]
        if i == 0:  # stem: 4x4 patchify
            down = nn.Sequential(nn.Conv2d(in_channels, c, kernel_size=4, stride=4), LayerNorm2d(c, eps=eps))
        else:
            down = nn.Sequential(LayerNorm2d(channels[i - 1], eps=eps),
                                 nn.Conv2d(channels[i - 1], c, kernel_size=2, stride=2))
        downsample_layers.append(down)
        stages.append(nn.Sequential(*[ConvNeXtBlock(c, rates[i][j], layer_scale_init_value, use_grn, eps)
                                      for j in range(depths[i])]))
    return downsample_layers, stages
