"""Preemption: a polite stop (SIGTERM, SIGUSR1) ends training after the current iteration with a checkpoint of it.

SLURM sends SIGTERM at preemption and at the time limit (``--signal=USR1@SECONDS`` sends SIGUSR1 that many seconds
earlier), and torchrun forwards SIGTERM to its workers (SIGUSR1 only with ``--signals-to-handle``; our launchers pass
it). ``PreemptionHook`` lets the iteration in progress finish; after it, the ranks agree through one all-reduce, so a
signal to any rank stops every rank at the same iteration; ``AtomicCheckpointHook.save_now`` writes the checkpoint
(rank 0, atomically, inside an epoch too); one line goes to the log and every rank exits with ``PREEMPTED_EXIT_CODE``.
The same command with ``--resume auto`` continues at the next iteration (``ExactResumeHook``). A second
signal ends the process at once, as the signal does without this hook.
"""
import os
import signal
import sys
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.device import get_device
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from ...utils.errors import ConfigError
from .atomic_checkpoint_hook import AtomicCheckpointHook

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL (sysexits.h): stopped with a checkpoint; run the same command again
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class PreemptionHook(Hook):
    """On SIGTERM or SIGUSR1, finish the iteration, write its checkpoint, log one line, exit with 75 (see the
    module's docstring). The lowest priority: the iteration's loss is logged and a checkpoint that the
    checkpoint hook wrote at this iteration is not written again."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self._received: Optional[int] = None

    def _on_signal(self, signum: int, frame) -> None:
        if self._received is not None:
            print(f'second {signal.Signals(signum).name}: exiting at once, without a checkpoint', file=sys.stderr,
                  flush=True)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self._received = signum

    def before_train(self, runner) -> None:
        self._checkpoint = next((h for h in runner.hooks if isinstance(h, AtomicCheckpointHook)), None)
        if self._checkpoint is None:
            raise ConfigError('PreemptionHook saves through default_hooks.checkpoint, which must be '
                              "convnext_dense.AtomicCheckpointHook (configs/_base_/reliability_hooks.py)")
        for signum in SIGNALS:
            signal.signal(signum, self._on_signal)

    def after_train(self, runner) -> None:
        for signum in SIGNALS:
            signal.signal(signum, signal.SIG_DFL)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        # (the signal, the highest rank that received it + 1); NCCL reduces GPU tensors only
        flag = torch.tensor([self._received or 0, runner.rank + 1 if self._received else 0], device=get_device())
        if runner.distributed:
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        signum, rank = (int(v) for v in flag.tolist())
        if not signum:
            return
        self.after_train(runner)  # a signal from now on (torchrun ending the ranks) acts at once
        path = self._checkpoint.save_now(runner)
        if runner.distributed:
            dist.barrier()  # no rank exits (and has torchrun end the others) before rank 0 has written
        where = f' by rank {rank - 1}' if runner.distributed else ''
        epoch = f' (epoch {runner.epoch + 1})' if isinstance(runner.train_loop, EpochBasedTrainLoop) else ''
        runner.logger.warning(f'{signal.Signals(signum).name} received{where}: stopped after iteration '
                              f'{runner.iter + 1}{epoch}, checkpoint {path}; the same command '
                              f'with --resume auto continues from it; exit code {PREEMPTED_EXIT_CODE}')
        raise SystemExit(PREEMPTED_EXIT_CODE)
