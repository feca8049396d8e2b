"""Training steps of our backbone under DistributedDataParallel: two gloo processes on this machine, one thread each.

``ddp_steps`` starts the processes, runs a few forward+backward+SGD steps on random images and returns the median
step time of rank 0. With ``strict=True`` DDP's "grad strides do not match bucket view strides" warning is an error
in both processes: a gradient whose strides differ from its bucket's costs a strided copy in every step.
"""
import os
import socket
import statistics
import tempfile
import time
import warnings
from typing import Sequence, Union

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..arch import Arch
from ..backbone import ConvNeXt

STRIDE_WARNING = '.*[Gg]rad strides do not match bucket view strides.*'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, arch: Arch, shape: Sequence[int], steps: int, strict: bool, out: str) -> None:
    if strict:
        warnings.filterwarnings('error', message=STRIDE_WARNING)
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    try:
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
        if rank == 0:
            with open(out, 'w') as f:
                f.write(str(statistics.median(times[1:] or times)))  # the first step builds DDP's buckets
    finally:
        dist.destroy_process_group()


def ddp_steps(arch: Union[str, dict] = 'tiny', shape: Sequence[int] = (1, 3, 224, 224), steps: int = 5,
              strict: bool = False) -> float:
    """Median seconds of one DDP training step of two gloo processes (rank 0), ``shape`` per process.

    Raises:
        torch.multiprocessing.ProcessRaisedException: A process failed, e.g. on the stride warning when ``strict``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'seconds')
        # fork: the processes start in a fraction of a second instead of importing torch and mmengine again
        mp.start_processes(_worker, args=(_free_port(), arch, tuple(shape), steps, strict, out), nprocs=2,
                           start_method='fork')
        with open(out) as f:
            return float(f.read())
