"""Building blocks of ConvNeXt (Liu et al., "A ConvNet for the 2020s", CVPR 2022) and ConvNeXt V2 (Woo et al.,
"ConvNeXt V2: Co-designing and Scaling ConvNets with Masked Autoencoders", CVPR 2023).

Every tensor between blocks is NCHW in shape; inside a block the channel MLP works on an NHWC view. When the
backbone runs channels-last, each permute here is a view, so LayerNorm is one fused kernel on contiguous memory
and no block copies its input (the official code normalises NCHW maps with a hand-written mean/variance instead).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..specs.arch import DEFAULT_NORM_EPS
from . import fused


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dimension of an NCHW map (the official ``channels_first`` LayerNorm)."""

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)  # (N, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (N, C, H, W)


class GRN(nn.Module):
    """Global Response Normalization of ConvNeXt V2, on NHWC input.

    The per-channel L2 norm is accumulated in float32 whatever the input's dtype (also in ONNX exports), and the
    normalised response is applied in the input's dtype. ``gamma`` and ``beta`` start at zero, so a fresh GRN is the
    identity. They are 1-D (as in timm and mmpretrain), which also keeps them out of weight decay; official
    (1, 1, 1, C) tensors are reshaped on loading.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # (N, 1, 1, C): L2 over H, W, accumulated in float32 also in exported graphs: in half precision the sum of
        # squares over a large map overflows (e.g. 200 x 336 positions at stage 0 of an 800 x 1344 input). The
        # reduction casts as it reads, so no float32 copy of the 4C-channel map is made in PyTorch.
        gx = torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True, dtype=torch.float32)
        nx = (gx / (gx.mean(dim=-1, keepdim=True) + self.eps)).to(x.dtype)  # divided by its mean over channels
        return torch.addcmul(self.beta + x, self.gamma, x * nx)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch of a sample with probability ``drop_prob`` in training."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'


class ConvNeXtBlock(nn.Module):
    """dwconv 7x7 -> LayerNorm -> Linear C->4C -> GELU [-> GRN] -> Linear 4C->C [-> * gamma] -> drop path -> + x.

    Args:
        channels: Input and output channels C.
        drop_path: Stochastic depth rate of this block. Default: 0.
        layer_scale_init_value: Initial value of the per-channel layer scale ``gamma``; <= 0 builds none
            (ConvNeXt V2). Default: 1e-6.
        use_grn: Add Global Response Normalization after GELU (ConvNeXt V2). Default: False.
        norm_eps: The LayerNorm's eps. Default: ``DEFAULT_NORM_EPS``, the official one (the backbone passes its
            arch's, ``specs.arch.arch_norm_eps``).
    """

    def __init__(self, channels: int, drop_path: float = 0.0, layer_scale_init_value: float = 1e-6,
                 use_grn: bool = False, norm_eps: float = DEFAULT_NORM_EPS) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(channels, channels, kernel_size=7, padding=3, groups=channels)
        self.norm = nn.LayerNorm(channels, eps=norm_eps)
        self.pwconv1 = nn.Linear(channels, 4 * channels)
        self.act = nn.GELU()
        self.grn: Optional[GRN] = GRN(4 * channels) if use_grn else None
        self.pwconv2 = nn.Linear(4 * channels, channels)
        self.gamma: Optional[nn.Parameter] = (
            nn.Parameter(torch.full((channels,), float(layer_scale_init_value)))
            if layer_scale_init_value > 0 else None)
        self.drop_path = DropPath(drop_path)
        self._fused_weights = fused.FusedMLPWeights()

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # (N, H, W, C)
        if fused.applies(x, self):  # inference on CPU: the same function in two oneDNN products
            return fused.block_mlp(self, x, y)
        y = self.act(self.pwconv1(self.norm(y)))
        if self.grn is not None:
            y = self.grn(y)
        y = self.pwconv2(y)
        if self.gamma is not None:
            y = y * self.gamma
        return x + self.drop_path(y.permute(0, 3, 1, 2))  # (N, C, H, W)


def depthwise_weights_in_grad_strides(module: nn.Module) -> None:
    """Store each (C, 1, k, k) depthwise weight in ``module`` with the strides its channels-last gradient has.

    Both stride sets are contiguous (the size-1 dim makes them one memory layout), but DDP compares strides exactly:
    with the default ones every step warned "grad strides do not match bucket view strides" and copied each
    depthwise gradient into its bucket through a strided view.
    """
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d) and conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels:
            weight = conv.weight
            _, _, kh, kw = weight.shape
            weight.data = torch.empty_strided(weight.shape, (kh * kw, 1, kw, 1), dtype=weight.dtype,
                                              device=weight.device).copy_(weight.data)
