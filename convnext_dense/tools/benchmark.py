"""Backbone speed and memory: images/s and peak memory of inference and training steps, side by side.

Implementations: ours (``convnext_dense.ConvNeXt``), the official formulation (``convnext_dense.testing.official``),
and, when installed, timm's ``convnext_*`` with ``features_only`` and mmpretrain's ConvNeXt (same arch, input, dtype).
Each case: warm-up runs, then timed repetitions with device synchronisation; the median is reported.
"""
import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..models.backbone import ConvNeXt
from ..testing.official import official_from

IMPLS = ('ours', 'official', 'timm', 'mmpretrain')
DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


@dataclass
class Result:
    impl: str
    arch: str
    shape: Tuple[int, int, int, int]
    dtype: str
    channels_last: bool
    compiled: bool
    with_cp: bool
    infer_img_s: Optional[float]
    train_img_s: Optional[float]
    train_peak_mb: Optional[float]
    error: Optional[str] = None


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], None], device: torch.device, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(impl: str, arch: str, shape: Sequence[int], dtype: str, channels_last: bool, compiled: bool,
            with_cp: bool, device: torch.device, warmup: int, reps: int) -> Optional[Result]:
    """Inference and forward+backward throughput (and peak training memory on CUDA) of one case."""
    model, _ = build_case(Case(impl, dtype, compiled, channels_last, with_cp), arch, device)
    if model is None:
        return None
    x = torch.randn(*shape, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    run_model = torch.compile(model) if compiled else model
    autocast = torch.autocast(device.type, dtype=DTYPES[dtype], enabled=DTYPES[dtype] is not None)

    def infer() -> None:
        with torch.no_grad(), autocast:
            run_model(x)

    def train() -> None:
        with autocast:
            loss = sum(o.float().mean() for o in run_model(x))
        loss.backward()

    result = Result(impl, arch, tuple(shape), dtype, channels_last, compiled, with_cp, None, None, None)
    try:
        model.eval()
        result.infer_img_s = shape[0] / median_seconds(infer, device, warmup, reps)
        model.train()
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        result.train_img_s = shape[0] / median_seconds(train, device, warmup, reps)
        if device.type == 'cuda':
            result.train_peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    except RuntimeError as e:  # e.g. out of memory or a dtype the device lacks: recorded, the others go on
        result.error = str(e).splitlines()[0][:200]
    return result


def run(device: str, arch: str, shapes: Sequence[Sequence[int]], impls: Sequence[str], dtypes: Sequence[str],
        formats: Sequence[bool], compile_modes: Sequence[bool], with_cp_modes: Sequence[bool], warmup: int,
        reps: int, log: Callable[[str], None] = print) -> List[Result]:
    """Every combination of the given options; implementations that are not installed are skipped."""
    torch.manual_seed(0)
    dev = torch.device(device)
    results = []
    for shape in shapes:
        for dtype in dtypes:
            for compiled in compile_modes:
                for channels_last in formats:
                    for impl in impls:
                        for with_cp in with_cp_modes:
                            if with_cp and impl not in ('ours', 'mmpretrain'):
                                continue
                            r = measure(impl, arch, shape, dtype, channels_last, compiled, with_cp, dev, warmup,
                                        reps)
                            if r is not None:
                                log(format_row(r))
                                results.append(r)
    return results


HEADER = (f'{"impl":<10} {"input":<16} {"dtype":<5} {"format":<13} {"mode":<8} {"cp":<3} {"infer img/s":>11} '
          f'{"train img/s":>11} {"peak MB":>8}')


def format_row(r: Result) -> str:
    def num(v: Optional[float], fmt: str) -> str:
        return format(v, fmt) if v is not None else '-'
    row = (f'{r.impl:<10} {"x".join(map(str, r.shape)):<16} {r.dtype:<5} '
           f'{"channels_last" if r.channels_last else "nchw":<13} {"compiled" if r.compiled else "eager":<8} '
           f'{"cp" if r.with_cp else "":<3} {num(r.infer_img_s, "11.2f")} {num(r.train_img_s, "11.2f")} '
           f'{num(r.train_peak_mb, "8.0f")}')
    return row + (f'  error: {r.error}' if r.error else '')


def environment(device: str) -> Dict[str, str]:
    env = dict(torch=torch.__version__, python=platform.python_version(), machine=platform.machine(),
               threads=str(torch.get_num_threads()), device=device)
    if device.startswith('cuda'):
        env['gpu'] = torch.cuda.get_device_name(torch.device(device))
    return env


def save(results: List[Result], path: str, device: str) -> None:
    with open(path, 'w') as f:
        json.dump(dict(environment=environment(device), results=[asdict(r) for r in results]), f, indent=1)


# Side-by-side comparisons: every case holds the same weights and runs in turn within each repetition.
@dataclass(frozen=True)
class Case:
    """One implementation in one mode: 'ours', 'timm', 'official' or 'mmpretrain'; 'fp32' or 'bf16' autocast."""

    impl: str
    precision: str = 'fp32'
    compiled: bool = False
    channels_last: bool = True
    with_cp: bool = False

    @property
    def name(self) -> str:
        mode = ('compiled' if self.compiled else 'eager') + ('' if self.channels_last else ' nchw') + \
            (' cp' if self.with_cp else '')
        return f'{self.impl} {self.precision} {mode}'


def realistic_constants_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random 1-D parameters (norms, biases, layer scales around 0.2) instead of ones, zeros and 1e-6, so that blocks
    are no near-identity and precision differences show."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                base = 0.2 if name.endswith('gamma') else 1.0 if p.detach().eq(1).all() else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=gen))
    return model


def build_case(case: Case, arch: str, device: torch.device) -> Tuple[Optional[nn.Module], str]:
    """The module of ``case`` with the weights every case of this arch shares (seeded), or (None, why skipped)."""
    from . import peers
    torch.manual_seed(0)
    ours = realistic_constants_(ConvNeXt(arch, channels_last=case.channels_last, with_cp=case.with_cp))
    if case.impl in ('timm', 'mmpretrain'):
        model, why = (peers.timm_like(ours, arch) if case.impl == 'timm' else
                      peers.mmpretrain_like(ours, arch, case.with_cp))
        if model is None:
            return None, why
        if case.impl == 'timm' and case.with_cp:
            model.features.set_grad_checkpointing(True)
    else:
        model = ours if case.impl == 'ours' else official_from(ours)
    model = model.to(device)
    if case.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, ''


def interleaved(cases: Sequence[Case], arch: str, shape: Sequence[int], device: str, warmup: int, reps: int,
                train: bool = True) -> Dict[str, dict]:
    """Inference (and forward+backward) images/s of every case, the cases alternating within each repetition, and
    each case's largest deviation from ours in fp32 eager relative to the map's largest value."""
    dev = torch.device(device)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dev)
    models, out = {}, {}
    for case in cases:
        model, why = build_case(case, arch, dev)
        if model is None:
            out[case.name] = dict(skipped=why)
            continue
        models[case] = (torch.compile(model) if case.compiled else model, model)
        out[case.name] = dict(torchvision=_torchvision_label(case))
    reference = build_case(Case('ours'), arch, dev)[0].eval()
    with torch.no_grad():
        expected = reference(x)
    for case, (run_model, model) in models.items():
        autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=case.precision == 'bf16')
        model.eval()
        with torch.no_grad(), autocast:
            got = run_model(x.contiguous(memory_format=torch.channels_last) if case.channels_last else x)
        out[case.name]['max_rel_dev'] = max(((g.float() - e).abs().max() / e.abs().max()).item()
                                            for g, e in zip(got, expected))
    for mode in ('infer', 'train') if train else ('infer',):
        seconds: Dict[Case, list] = {case: [] for case in models}
        for i in range(warmup + reps):
            order = list(models.items())
            for case, (run_model, model) in order[i % len(order):] + order[:i % len(order)]:  # rotating first
                autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=case.precision == 'bf16')
                xin = x.contiguous(memory_format=torch.channels_last) if case.channels_last else x
                model.train(mode == 'train')
                if dev.type == 'cuda' and i == warmup + reps - 1:
                    torch.cuda.reset_peak_memory_stats(dev)

                def step() -> None:
                    if mode == 'infer':
                        with torch.no_grad(), autocast:
                            run_model(xin)
                    else:
                        with autocast:
                            loss = sum(o.float().mean() for o in run_model(xin))
                        loss.backward()
                start = time.perf_counter()
                step()
                _sync(dev)
                if i >= warmup:
                    seconds[case].append(time.perf_counter() - start)
                if dev.type == 'cuda' and i == warmup + reps - 1:
                    out[case.name][f'{mode}_peak_mb'] = torch.cuda.max_memory_allocated(dev) / 2**20
        for case in models:
            out[case.name][f'{mode}_img_s'] = shape[0] / statistics.median(seconds[case])
    return out


def _torchvision_label(case: Case) -> str:
    from .peers import torchvision_label
    return torchvision_label() if case.impl == 'timm' else ''
