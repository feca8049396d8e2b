"""The official ConvNeXt dense backbone formulation, kept as the reference our fast backbone is tested and benchmarked
against.

Transcribed from the official repository's ``object_detection/backbone/convnext.py`` (V1) and ConvNeXt V2's GRN:
contiguous NCHW tensors, a hand-written mean/variance LayerNorm over channels, and a permute to NHWC and back in every
block. Parameter names equal ours (GRN tensors here keep the official (1, 1, 1, C) shape), so
``OfficialConvNeXt(...).load_state_dict(convert_state_dict(ours.state_dict()))`` gives the same function
(``official_from`` does it).
"""
from typing import Dict, Sequence, Tuple

import torch
from torch import Tensor, nn


class ChannelsFirstLayerNorm(nn.Module):
    """The official ``LayerNorm(data_format='channels_first')``: mean and variance written out over dim 1."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class OfficialGRN(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, channels))

    def forward(self, x: Tensor) -> Tensor:
        gx = torch.norm(x, p=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class OfficialBlock(nn.Module):
    def __init__(self, dim: int, layer_scale_init_value: float, use_grn: bool) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.grn = OfficialGRN(4 * dim) if use_grn else None
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = (nn.Parameter(layer_scale_init_value * torch.ones(dim))
                      if layer_scale_init_value > 0 else None)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        x = self.act(self.pwconv1(self.norm(x)))
        if self.grn is not None:
            x = self.grn(x)
        x = self.pwconv2(x)
        if self.gamma is not None:
            x = self.gamma * x
        x = x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
        return shortcut + x


class OfficialConvNeXt(nn.Module):
    """Inference-only official formulation (no drop path): returns ``norm{i}`` of every stage in ``out_indices``."""

    def __init__(self, depths: Sequence[int], channels: Sequence[int], out_indices: Sequence[int] = (0, 1, 2, 3),
                 layer_scale_init_value: float = 1e-6, use_grn: bool = False, in_channels: int = 3) -> None:
        super().__init__()
        self.out_indices = tuple(out_indices)
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_channels, channels[0], kernel_size=4, stride=4), ChannelsFirstLayerNorm(channels[0]))])
        for i in range(1, max(self.out_indices) + 1):
            self.downsample_layers.append(nn.Sequential(
                ChannelsFirstLayerNorm(channels[i - 1]), nn.Conv2d(channels[i - 1], channels[i], 2, stride=2)))
        self.stages = nn.ModuleList(
            nn.Sequential(*[OfficialBlock(channels[i], layer_scale_init_value, use_grn) for _ in range(depths[i])])
            for i in range(max(self.out_indices) + 1))
        for i in self.out_indices:
            self.add_module(f'norm{i}', ChannelsFirstLayerNorm(channels[i]))

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outs = []
        for i, (down, stage) in enumerate(zip(self.downsample_layers, self.stages)):
            x = stage(down(x))
            if i in self.out_indices:
                outs.append(getattr(self, f'norm{i}')(x))
        return tuple(outs)


def convert_state_dict(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Our state dict in the official shapes: GRN gamma/beta (C,) -> (1, 1, 1, C)."""
    return {k: v.reshape(1, 1, 1, -1) if '.grn.' in k else v for k, v in state_dict.items()}


def official_from(model: nn.Module) -> OfficialConvNeXt:
    """An OfficialConvNeXt holding the weights of a ``convnext_dense.ConvNeXt``."""
    first_block = model.stages[0][0]
    reference = OfficialConvNeXt(model.arch_depths, model.arch_channels, model.out_indices,
                                 layer_scale_init_value=1.0 if first_block.gamma is not None else 0.0,
                                 use_grn=first_block.grn is not None,
                                 in_channels=model.downsample_layers[0][0].in_channels)
    reference.load_state_dict(convert_state_dict(model.state_dict()))
    return reference.eval()
