"""Training steps of our backbone under DistributedDataParallel: two gloo processes on this machine, one thread each.

``ddp_steps`` starts the processes, runs a few forward+backward+SGD steps on random images and returns the median
step time of rank 0. With ``strict=True`` DDP's "grad strides do not match bucket view strides" warning is an error
in both processes: a gradient whose strides differ from its bucket's costs a strided copy in every step.
"""
import os
import statistics
import tempfile
import time
import warnings
from typing import Sequence, Union

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..models.backbone import ConvNeXt
from ..specs.arch import Arch

STRIDE_WARNING = '.*[Gg]rad strides do not match bucket view strides.*'


def _step_times(rank: int, arch: Arch, shape: Sequence[int], steps: int) -> list:
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(ConvNeXt(arch, drop_path_rate=0.1))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(rank))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        sum(o.float().mean() for o in model(x)).backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def _worker(rank: int, store: str, arch: Arch, shape: Sequence[int], steps: int, strict: bool, out: str) -> None:
    if strict:
        warnings.filterwarnings('error', message=STRIDE_WARNING)
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank, world_size=2)
    try:
        # the DDP model, which holds the group, is freed before the group is destroyed: freed after it, the group's
        # destructor hung joining its gloo threads in about one run in four
        times = _step_times(rank, arch, shape, steps)
    finally:
        dist.destroy_process_group()
    if rank == 0:
        with open(out, 'w') as f:
            f.write(str(statistics.median(times[1:] or times)))  # the first step builds DDP's buckets


def ddp_steps(arch: Union[str, dict] = 'tiny', shape: Sequence[int] = (1, 3, 224, 224), steps: int = 5,
              strict: bool = False, timeout: float = 600) -> float:
    """Median seconds of one DDP training step of two gloo processes (rank 0), ``shape`` per process.

    Raises:
        torch.multiprocessing.ProcessRaisedException: A process failed, e.g. on the stride warning when ``strict``.
        TimeoutError: A process still ran after ``timeout`` seconds; both are killed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'seconds')
        # fork: the processes start in a fraction of a second instead of importing torch and mmengine again
        args = (os.path.join(tmp, 'store'), arch, tuple(shape), steps, strict, out)
        context = mp.start_processes(_worker, args=args, nprocs=2, start_method='fork', join=False)
        deadline = time.monotonic() + timeout
        while not context.join(timeout=max(0.0, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                running = [rank for rank, process in enumerate(context.processes) if process.is_alive()]
                for process in context.processes:
                    process.kill()
                    process.join()
                raise TimeoutError(f'DDP step processes: rank(s) {running} still running after {timeout:g} s')
        with open(out) as f:
            return float(f.read())
