"""The stuck-rank watchdog: a rank that stops finishing iterations ends the job within a timeout, named.

One rank that stops stepping (a data-loader deadlock, a hung file system) otherwise leaves the others waiting in a
collective until the process group's timeout (30 minutes for gloo, 10 for NCCL), with nothing in the log saying
which rank. ``WatchdogHook`` runs a thread on every rank that publishes how far the rank has come to the
process group's key-value store (not a collective: it answers while the ranks wait in one) and notices when its rank
has made no progress (no training step begun or finished, no validation batch) for ``watchdog_timeout`` seconds. It
then logs one line naming the rank(s) behind, where each rank is and the last complete checkpoint (still resumable:
it was written atomically), and exits with ``STUCK_EXIT_CODE``, upon which torchrun ends the other ranks.

The timeout is the config's ``watchdog_timeout`` (seconds; default ``DEFAULT_TIMEOUT``; 0 turns the watchdog off);
it must exceed the slowest step between two iterations: an iteration, a checkpoint write, a validation batch.
"""
import os
import threading
import time
from typing import Dict, Optional, Tuple

import torch.distributed as dist
from mmengine.hooks import Hook

from ...utils.errors import ConfigError

STUCK_EXIT_CODE = 70  # EX_SOFTWARE (sysexits.h)
DEFAULT_TIMEOUT = 600.0
KEY = 'convnext_dense/watchdog/rank{}'


def _where(progress: int) -> str:
    done = progress // 2
    return f'in iteration {done + 1}' if progress % 2 else f'finished iteration {done}'


def describe_stuck(progress: Dict[int, int], timeout: float, checkpoint: Optional[str]) -> str:
    """The watchdog's line: the ranks behind the others (or all ranks, when none is ahead) and where each is.

    Args:
        progress: {rank: 2 x the training iterations it finished, + 1 once it is inside the next one's step}.
        timeout: Seconds without progress.
        checkpoint: The last complete checkpoint, or None.
    """
    least = min(progress.values())
    behind = sorted(rank for rank, done in progress.items() if done == least)
    names = ', '.join(map(str, behind))
    what = f'rank {names}' if len(behind) == 1 else f'ranks {names}'
    what += f' made no progress in {timeout:g} s'
    if len(behind) < len(progress):
        what += ' while the others wait for ' + ('it' if len(behind) == 1 else 'them')
    where = '; '.join(f'rank {rank} {_where(done)}' for rank, done in sorted(progress.items()))
    kept = (f'the last complete checkpoint is {checkpoint}; --resume auto continues from it' if checkpoint
            else 'no checkpoint had been written')
    return f'watchdog: {what} ({where}); {kept}; ending the job'


class WatchdogHook(Hook):
    """End the job, naming the stuck rank(s), when this rank finishes no iteration within the config's
    ``watchdog_timeout`` seconds (see the module's docstring)."""

    # the last hook before the step and the last after it: a rank stuck in another hook has not reached the step
    priority = 'LOWEST'

    def __init__(self) -> None:
        self._beat: Tuple[float, int] = (time.monotonic(), 0)  # (when, progress as describe_stuck counts it)
        self._stop = threading.Event()

    def before_train(self, runner) -> None:
        timeout = runner.cfg.get('watchdog_timeout', DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ConfigError(f'watchdog_timeout={timeout!r}; valid: seconds > 0, or 0 to turn the watchdog off')
        if not timeout:
            return
        self._beat = (time.monotonic(), 2 * runner.iter)
        store = dist.distributed_c10d._get_default_store() if runner.distributed else None
        thread = threading.Thread(target=self._watch, args=(runner, float(timeout), store), daemon=True,
                                  name='convnext_dense-watchdog')
        thread.start()

    def after_train(self, runner) -> None:
        self._stop.set()

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._beat = (time.monotonic(), 2 * runner.iter + 1)  # the batch is loaded, the step begins

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._beat = (time.monotonic(), 2 * (runner.iter + 1))

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._beat = (time.monotonic(), self._beat[1])

    def _watch(self, runner, timeout: float, store) -> None:
        period = min(1.0, timeout / 4)
        while not self._stop.wait(period):
            when, done = self._beat
            if store is not None:
                store.set(KEY.format(runner.rank), str(done))
            if time.monotonic() - when < timeout:
                continue
            progress = {runner.rank: done}
            if store is not None:
                keys = [KEY.format(rank) for rank in range(runner.world_size)]
                present = [rank for rank, key in enumerate(keys) if store.check([key])]
                progress.update({rank: int(store.get(keys[rank])) for rank in present})
            runner.logger.error(describe_stuck(progress, timeout, runner.message_hub.get_info('last_ckpt')))
            for handler in runner.logger.handlers:
                handler.flush()
            os._exit(STUCK_EXIT_CODE)  # the main thread is blocked (in a collective, or wherever it hangs)
