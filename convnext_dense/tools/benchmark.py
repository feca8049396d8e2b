"""Backbone speed and memory: images/s and peak memory of inference and training steps, side by side.

Implementations: ours (``convnext_dense.ConvNeXt``), the official formulation (``convnext_dense.official``), and,
when installed, timm's ``convnext_*`` with ``features_only`` and mmpretrain's ConvNeXt (same arch, input, dtype).
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

from ..backbone import ConvNeXt
from ..official import official_from

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


def build(impl: str, arch: str, channels_last: bool, with_cp: bool) -> Optional[nn.Module]:
    """The backbone ``impl`` for ``arch`` with random weights, or None when its library is not installed."""
    if impl == 'ours':
        return ConvNeXt(arch, channels_last=channels_last, with_cp=with_cp)
    if impl == 'official':
        return official_from(ConvNeXt(arch))
    if impl == 'timm':
        try:
            import timm
        except ImportError:
            return None
        return timm.create_model(f'convnext_{arch}', features_only=True, pretrained=False)
    try:
        import mmpretrain.utils
        mmpretrain.utils.WITH_MULTIMODAL = False  # mmpretrain 1.2 breaks on transformers 5.x otherwise
        from mmpretrain.models import ConvNeXt as MMPretrainConvNeXt
    except ImportError:
        return None
    return MMPretrainConvNeXt(arch, out_indices=(0, 1, 2, 3), gap_before_final_norm=False, with_cp=with_cp)


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
    model = build(impl, arch, channels_last, with_cp)
    if model is None:
        return None
    model = model.to(device)
    x = torch.randn(*shape, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        model = model.to(memory_format=torch.channels_last)
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
