"""The roadmap table (``tools/roadmap.py``): per step the paper's ImageNet-1K top-1 and GFLOPs (published), our
GFLOPs and parameters, and CPU inference speed.

FLOPs are counted as the paper's tables count them: multiply-adds of the convolutions and linear layers of one
224 x 224 image (norms, activations and residual sums are not counted; the backbone has no classifier). The count
runs the real backbone on the ``meta`` device (shapes only, no arithmetic), so all 32 steps take seconds, and it
counts what the modules compute, not a second description of them.
"""
import copy
import json
import time
from typing import Dict, List, Optional

import torch
from torch import nn

from ..models.roadmap.backbone import ConvNeXtRoadmap
from ..specs.roadmap import PAPER, PAPER_FLOPS_ERRATA, ROADMAP_STEPS, check_regime

PAPER_SIZE = 224  # the tables' input
SPEED_SIZE = 512  # the speed column's input (1 x 3 x 512 x 512)


def multiply_adds(model: nn.Module, size: int = PAPER_SIZE) -> int:
    """Multiply-adds of ``model``'s convolutions and linear layers on one 3 x size x size image, counted on the meta
    device (``model`` may live anywhere; a meta copy runs)."""
    total = 0

    def count(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += out.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        else:
            total += out.numel() * module.in_features

    meta = model if next(model.parameters()).is_meta else copy.deepcopy(model).to('meta')
    handles = [m.register_forward_hook(count) for m in meta.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            meta.eval()(torch.empty(1, 3, size, size, device='meta'))
    finally:
        for handle in handles:
            handle.remove()
    return total


def build_meta(step: str, regime: str) -> ConvNeXtRoadmap:
    """The step's backbone with its parameters on the meta device (built in milliseconds, no memory)."""
    with torch.device('meta'):
        return ConvNeXtRoadmap(step, regime)


def images_per_second(model: nn.Module, size: int = SPEED_SIZE, warmup: int = 1, repeats: int = 3) -> float:
    """Eager fp32 inference of a 1 x 3 x size x size image on CPU: the best of ``repeats`` timed passes."""
    x = torch.randn(1, 3, size, size)
    model.eval()
    best = float('inf')
    with torch.no_grad():
        for i in range(warmup + repeats):
            start = time.perf_counter()
            model(x)
            if i >= warmup:
                best = min(best, time.perf_counter() - start)
    return 1.0 / best


def roadmap_table(regime: str, speed: bool = True, steps: Optional[List[str]] = None) -> List[Dict[str, object]]:
    """One row per step of ``regime``: step, the paper's top-1 and GFLOPs, ours, parameters (M), and (``speed``)
    images per second at 512 x 512 on this CPU."""
    check_regime(regime)
    rows = []
    for step in steps or ROADMAP_STEPS:
        meta = build_meta(step, regime)
        published = PAPER[regime][step]
        row: Dict[str, object] = dict(
            step=step, paper_top1=published.top1, paper_gflops=published.gflops,
            gflops=round(multiply_adds(meta) / 1e9, 3),
            params_m=round(sum(p.numel() for p in meta.parameters()) / 1e6, 2))
        if (regime, step) in PAPER_FLOPS_ERRATA:
            row['paper_gflops_implied'] = PAPER_FLOPS_ERRATA[(regime, step)]
        if speed:
            row['img_per_s_512'] = round(images_per_second(ConvNeXtRoadmap(step, regime)), 3)
        rows.append(row)
    return rows


def format_table(regime: str, rows: List[Dict[str, object]]) -> str:
    """A markdown table of ``roadmap_table``'s rows."""
    lines = [f'ConvNeXt roadmap, {regime} regime (paper: ImageNet-1K top-1, GFLOPs at 224, published)', '',
             '| step | paper top-1 | paper GFLOPs | our GFLOPs | params (M) | img/s 512x512 CPU |',
             '|---|---|---|---|---|---|']
    for row in rows:
        paper = f'{row["paper_gflops"]:.2f}' + (f' ({row["paper_gflops_implied"]:.2f})' if 'paper_gflops_implied' in row
                                                else '')
        speed = f'{row["img_per_s_512"]:.2f}' if 'img_per_s_512' in row else 'not measured'
        lines.append(f'| {row["step"]} | {row["paper_top1"]:.2f} | {paper} | {row["gflops"]:.3f} | '
                     f'{row["params_m"]:.2f} | {speed} |')
    return '\n'.join(lines)


def save_table(path: str, regime: str, rows: List[Dict[str, object]], context: Dict[str, object]) -> None:
    with open(path, 'w') as f:
        json.dump(dict(regime=regime, **context, rows=rows), f, indent=1)
