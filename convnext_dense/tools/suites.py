"""Prepared benchmark suites: ``cpu`` (the headline CPU comparisons) and ``gpu`` (what the GPU targets need, most
important first, about 8 minutes on one H100/H200). The JSON is rewritten after every item, so a run cut off by a
time limit still reports what it finished; an item that fails is recorded with its error and the suite goes on.

``quick=True`` runs every item of a suite at toy sizes (ConvNeXt-atto backbones, the demo configs instead of the T
ones, 64 px images, one repetition, no compilation: compiled cases are recorded as skipped) so that a CPU test can
check that each key is produced.
"""
import json
import os
import platform
import time
import traceback
from typing import Callable, Dict, List, Tuple

import torch

from . import bench_ddp, bench_dino, bench_models, bench_swin
from .benchmark import Case, interleaved

Item = Tuple[str, Callable[[], object]]


def _backbone(cases: List[Case], arch: str, shape: Tuple[int, ...], device: str, reps: int, quick: bool,
              train: bool = True) -> Dict[str, dict]:
    skipped = {c.name: dict(skipped='--quick does not compile') for c in cases if quick and c.compiled}
    run = [c for c in cases if not (quick and c.compiled)]
    return {**interleaved(run, arch, shape, device, warmup=0 if quick else 2, reps=1 if quick else reps,
                          train=train), **skipped}


def _pairs(impls: Tuple[str, ...], **modes: object) -> List[Case]:
    return [Case(impl, **modes) for impl in impls]


def cpu_items(repo: str, quick: bool, reps: int) -> List[Item]:
    """The CPU headline: ConvNeXt-T backbone at 1 x 3 x 512 x 512 (fp32 and bf16 autocast) against timm, the
    official formulation and mmpretrain; the whole models at 320 x 480; ConvNeXt-T beside Swin-T (backbones at
    512 x 512, the Mask2Former T models at 512 x 512); DINO-4scale ConvNeXt-T beside mmdet's DINO-4scale R50 at
    320 x 480; the 2-process DDP step; then compiled."""
    arch, shape = ('atto', (1, 3, 64, 64)) if quick else ('tiny', (1, 3, 512, 512))
    size = (64, 64) if quick else (320, 480)
    both = ('ours', 'timm')
    return [
        ('backbone_eager', lambda: _backbone(
            _pairs(both) + _pairs(both, precision='bf16') + _pairs(('official', 'mmpretrain')) +
            [Case('ours', channels_last=False)], arch, shape, 'cpu', reps, quick)),
        ('cascade_t', lambda: bench_models.compare('demo_cascade' if quick else 'cascade_t', repo, 'cpu', size,
                                                   0 if quick else 1, 1 if quick else reps)),
        ('upernet_t', lambda: bench_models.compare('demo_upernet' if quick else 'upernet_t', repo, 'cpu', size,
                                                   0 if quick else 1, 1 if quick else reps)),
        ('swin_t_backbone', lambda: bench_swin.backbones('cpu', shape, 0 if quick else 1, 1 if quick else reps,
                                                         quick)),
        ('mask2former_t', lambda: bench_swin.mask2former(repo, 'cpu', (64, 64) if quick else (512, 512),
                                                         0 if quick else 1, 1 if quick else min(reps, 3), quick)),
        ('dino_t', lambda: bench_dino.dino(repo, 'cpu', size, 0 if quick else 1, 1 if quick else min(reps, 3),
                                           quick)),
        ('ddp_gloo_step_s', lambda: bench_ddp.ddp_steps('atto' if quick else 'tiny',
                                                        (1, 3, 64, 64) if quick else (1, 3, 224, 224),
                                                        steps=2 if quick else 6)),
        ('backbone_compiled', lambda: _backbone(
            _pairs(both, compiled=True) + _pairs(both, precision='bf16', compiled=True), arch, shape, 'cpu', reps,
            quick)),
    ]


def gpu_items(repo: str, device: str, quick: bool, reps: int) -> List[Item]:
    """The GPU targets, most important first (see docs/benchmarks.md)."""
    arch = 'atto' if quick else 'tiny'
    big, batch16 = ((1, 3, 64, 64), (2, 3, 64, 64)) if quick else ((2, 3, 800, 1344), (16, 3, 512, 512))
    size = (64, 64) if quick else (800, 1344)
    both = ('ours', 'timm')
    return [
        ('smoke_det', lambda: bench_models.smoke('configs/coco/demo_cascade_convnext.py', repo, device,
                                                 2 if quick else 20)),
        ('smoke_seg', lambda: bench_models.smoke('configs/ade20k/demo_upernet_convnext.py', repo, device,
                                                 2 if quick else 20)),
        ('backbone_bf16_800x1344', lambda: _backbone(
            _pairs(both, precision='bf16') + _pairs(both, precision='bf16', compiled=True), arch, big, device, reps,
            quick)),
        ('cascade_t', lambda: bench_models.compare('demo_cascade' if quick else 'cascade_t', repo, device, size,
                                                   0 if quick else 3, 1 if quick else reps)),
        ('upernet_t', lambda: bench_models.compare('demo_upernet' if quick else 'upernet_t', repo, device,
                                                   (64, 64) if quick else (512, 512), 0 if quick else 3,
                                                   1 if quick else reps)),
        ('swin_t_backbone', lambda: bench_swin.backbones(device, big, 0 if quick else 3, 1 if quick else reps,
                                                         quick)),
        ('mask2former_t', lambda: bench_swin.mask2former(repo, device, (64, 64) if quick else (512, 512),
                                                         0 if quick else 3, 1 if quick else reps, quick)),
        ('dino_t', lambda: bench_dino.dino(repo, device, size, 0 if quick else 3, 1 if quick else reps, quick)),
        ('memory_with_cp', lambda: _backbone(
            _pairs(both, precision='bf16') + _pairs(both, precision='bf16', with_cp=True), arch, big, device,
            max(1, reps // 4), quick)),
        ('backbone_fp32_formats', lambda: _backbone(
            _pairs(both) + _pairs(both, channels_last=False), arch, big, device, reps, quick)),
        ('backbone_bf16_16x512', lambda: _backbone(
            _pairs(both, precision='bf16') + _pairs(both, precision='bf16', compiled=True), arch, batch16, device,
            reps, quick)),
    ]


def environment(device: str) -> Dict[str, object]:
    """Versions, device, thread count and the load average (a shared machine's noise)."""
    env: Dict[str, object] = dict(torch=torch.__version__, python=platform.python_version(),
                                  machine=platform.machine(), cpus=os.cpu_count(), threads=torch.get_num_threads(),
                                  device=device, load_average=os.getloadavg())
    if device.startswith('cuda'):
        env['gpu'] = torch.cuda.get_device_name(torch.device(device))
    return env


def run_suite(items: List[Item], path: str, device: str, command: str,
              log: Callable[[str], None] = print) -> Dict[str, object]:
    """Run the items in order, rewriting the JSON at ``path`` after each one; returns what was written."""
    report: Dict[str, object] = dict(command=command, environment=environment(device), items={})
    for key, measure in items:
        start = time.perf_counter()
        try:
            value = measure()
        except Exception as e:  # recorded; the later items still run
            value = dict(error=f'{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ""}',
                         traceback=traceback.format_exc()[-2000:])
        report['items'][key] = dict(result=value, seconds=time.perf_counter() - start,
                                    load_average=os.getloadavg())
        log(f'{key}: {json.dumps(value, default=str)[:2000]}')
        os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
        with open(path + '.tmp', 'w') as f:
            json.dump(report, f, indent=1, default=str)
        os.replace(path + '.tmp', path)
    return report
