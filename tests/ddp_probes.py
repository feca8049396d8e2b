"""Probes that the processes launched by tests/test_distributed.py import (``custom_imports``): each rank's weights,
each rank's share of the merged evaluation, a rank that stops mid-run to be killed (or to be named by the
watchdog), a rank that signals itself, the bytes of state each rank holds, and the images each iteration trains on."""
import json
import os
import os.path as osp
import signal
import time

import torch
from mmengine.dist import get_rank
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS, METRICS


@HOOKS.register_module()
class DumpParamsHook(Hook):
    """Save this rank's parameters before and after training: ``rank{r}_{before,after}.pth`` in the work dir."""

    def _dump(self, runner, when: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        params = {name: p.detach().clone() for name, p in model.named_parameters()}
        torch.save(params, osp.join(runner.work_dir, f'rank{get_rank()}_{when}.pth'))

    def before_train(self, runner) -> None:
        self._dump(runner, 'before')

    def after_train(self, runner) -> None:
        self._dump(runner, 'after')


@METRICS.register_module()
class SamplesPerRankMetric(BaseMetric):
    """Counts, after mmengine merged the ranks' results, how many evaluated samples each rank contributed."""

    default_prefix = 'ranks'

    def process(self, data_batch, data_samples) -> None:
        self.results.extend([get_rank()] * len(data_samples))

    def compute_metrics(self, results: list) -> dict:
        return {**{f'rank{rank}': results.count(rank) for rank in sorted(set(results))}, 'total': len(results)}


@HOOKS.register_module()
class PauseHook(Hook):
    """With ``PAUSE_RANK=r PAUSE_AT=i`` in the environment, rank r stops before iteration i + 1, writes its pid to
    ``pause_rank{r}.pid`` in the work dir and waits there (a minute at most) to be killed; otherwise nothing."""

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if os.environ.get('PAUSE_RANK') != str(get_rank()) or runner.iter != int(os.environ['PAUSE_AT']):
            return
        path = osp.join(runner.work_dir, f'pause_rank{get_rank()}.pid')
        with open(path + '.tmp', 'w') as f:
            f.write(str(os.getpid()))
        os.replace(path + '.tmp', path)  # the test reads a complete pid
        time.sleep(60)


@HOOKS.register_module()
class SignalHook(Hook):
    """With ``SIGNAL_RANK=r SIGNAL_AT=i SIGNAL=NAME`` (and ``SIGNAL_COUNT=n``, default 1) in the environment, rank r
    sends itself signal NAME n times during iteration i (after its batch is loaded), or with ``SIGNAL_TARGET=parent``
    to its launcher (torchrun, which forwards it to every rank); otherwise nothing."""

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if os.environ.get('SIGNAL_RANK') != str(get_rank()) or runner.iter + 1 != int(os.environ['SIGNAL_AT']):
            return
        for _ in range(int(os.environ.get('SIGNAL_COUNT', '1'))):
            target = os.getppid() if os.environ.get('SIGNAL_TARGET') == 'parent' else os.getpid()
            os.kill(target, getattr(signal, os.environ['SIGNAL']))


@HOOKS.register_module()
class StateBytesHook(Hook):
    """After training, write the bytes of the parameters and optimizer state this rank holds (a shard of them under
    FSDP) to ``rank{r}_bytes.json`` in the work dir."""

    def after_train(self, runner) -> None:
        def size(tensors) -> int:
            return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))
        state = runner.optim_wrapper.optimizer.state.values()
        held = dict(params=size(runner.model.parameters()), optimizer=size(v for s in state for v in s.values()))
        with open(osp.join(runner.work_dir, f'rank{get_rank()}_bytes.json'), 'w') as f:
            json.dump(held, f)


@HOOKS.register_module()
class ImageIdsHook(Hook):
    """Append each training iteration's image ids to ``rank{r}_images.jsonl`` in the work dir: one line
    ``{"iter": i, "img_ids": [...]}`` per iteration, from the batch's data samples (mmdet's ``img_id``; mmseg's have
    none, so the image's file name)."""

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        ids = [sample.metainfo['img_id'] if 'img_id' in sample.metainfo else osp.basename(sample.metainfo['img_path'])
               for sample in data_batch['data_samples']]
        with open(osp.join(runner.work_dir, f'rank{get_rank()}_images.jsonl'), 'a') as f:
            f.write(json.dumps(dict(iter=runner.iter + 1, img_ids=ids)) + '\n')
