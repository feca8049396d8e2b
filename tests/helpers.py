"""Helpers shared by the tests."""
import torch
from torch import nn


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random values everywhere, also where the init is a constant (norms, layer scale, GRN); the mode is kept."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1.0 if p.dim() == 1 else 0.0))
    return model
