"""Reliability hooks: crash-safe checkpoints, a non-finite loss stop, a check that a loaded checkpoint fits, the data.

Every shipped config declares them (``configs/_base_/reliability.py``), so they run through any tool that builds a
mmengine Runner from the config: ours, mmdet's and mmseg's ``tools/train.py`` / ``tools/test.py``, ``mim`` or
``Runner.from_cfg``:

* ``AtomicCheckpointHook`` replaces mmengine's ``CheckpointHook``: a kill at any moment leaves ``last_checkpoint``
  pointing at a complete file.
* ``NonFiniteLossHook`` stops training at the first NaN / inf loss, naming the iteration, before a checkpoint of
  the diverged weights is written.
* ``CheckpointFitHook`` refuses a ``load_from`` / ``--resume`` / test checkpoint that fits none of the model's
  tensors or holds a backbone of another arch, instead of mmengine's warnings and a randomly initialised model.
* ``DatasetCheckHook`` runs ``dataset_checks`` and ``class_checks`` before the datasets are built and the first step.
"""
import math
import os
import os.path as osp
from contextlib import contextmanager
from typing import Dict, Iterator, List, Mapping, Optional, Sequence

import torch
import torch.distributed as dist
from mmengine.device import get_device
from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import BaseLoop, find_latest_checkpoint
from torch import Tensor, nn

from .atomic import PARTIAL_SUFFIX, commit, write_atomic
from .backbone import ConvNeXt
from .checkpoint.checks import check_tensor_fits
from .checkpoint.layouts import WHOLE_MODEL_PREFIX
from .class_checks import check_classes
from .dataset_checks import check_dataset_config, check_labels, check_samples, config_variables
from .fsdp import is_fsdp, unsharded
from .resume import POINTER, check_resume
from .train_state import STATE_KEY, capture


@contextmanager
def stop_on_write_error(path: str, kept: Optional[str]) -> Iterator[None]:
    """Turn a failed write of checkpoint ``path`` (disk full, file too large) into one clear ``OSError`` naming the
    file and the checkpoint ``kept``; the partial file is removed, so a resume finds only complete files."""
    try:
        yield
    except OSError as e:
        if osp.isfile(path + PARTIAL_SUFFIX):
            os.remove(path + PARTIAL_SUFFIX)
        kept = f'the previous checkpoint, {kept}, and {POINTER} are kept' if kept else 'no checkpoint was written'
        raise OSError(e.errno, f'could not write checkpoint {path}: {e.strerror or e}; training stopped and {kept}. '
                               'Free space on that disk (or lower max_keep_ckpts) and continue with --resume') from e


class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) whose checkpoints survive a kill at any moment.

    mmengine 0.10 writes a checkpoint in place (``LocalBackend.put``), writes ``last_checkpoint`` with a plain
    ``open(..., 'w')``, and deletes the oldest checkpoint *before* writing the new one: with ``max_keep_ckpts=1`` a
    kill during the write leaves a truncated file, no complete one, and a pointer to a deleted file. Here the new
    checkpoint is written under a ``.partial`` name and renamed once complete, then the pointer is replaced the same
    way, and only then are outdated checkpoints deleted. A file backend could make the writes atomic but not fix that
    order, nor reach the pointer, which mmengine writes with ``open``; so this overrides the one method that does
    all three. Checkpoints go to local disk (``out_dir`` is a local path); an object store needs none of this.
    """

    def before_run(self, runner) -> None:
        """Check what a training run resumes from (``convnext_dense.resume``) before mmengine loads anything."""
        if not isinstance(runner._train_loop, BaseLoop):  # testing: nothing is resumed
            return
        message = check_resume(runner.work_dir, runner.cfg.get('resume'), runner.cfg.get('load_from'))
        if message:
            runner.logger.info(message)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._written_at: Optional[int] = None  # the iterations done when this run last wrote a checkpoint
        if not isinstance(self.file_backend, LocalBackend):
            raise ValueError(f'AtomicCheckpointHook writes local files; out_dir={self.out_dir!r} is not local: set '
                             "default_hooks.checkpoint.type='CheckpointHook' for remote storage")

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        outdated = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.filename_tmpl.format(self.keep_ckpt_ids.popleft()))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))  # saved in the checkpoint
        self._write(runner, self.filename_tmpl.format(step), meta, self.by_epoch)
        for name in outdated if is_main_process() else ():  # the writer deletes, once the new file is complete
            path = osp.join(self.out_dir, name)
            if osp.isfile(path):
                os.remove(path)

    def save_now(self, runner) -> str:
        """Write ``iter_{N}.pth`` of the iteration just finished (inside an epoch too; not counted by max_keep_ckpts)
        unless written already, and point ``last_checkpoint`` at it; every rank calls it. Returns its path."""
        if self._written_at != runner.iter + 1:
            self._write(runner, f'iter_{runner.iter + 1}.pth', {}, by_epoch=False)
        return self.last_ckpt

    def _write(self, runner, filename: str, meta: dict, by_epoch: bool) -> None:
        meta = dict(meta, **{STATE_KEY: capture(runner)})  # a collective: before the main process alone writes
        previous, self.last_ckpt = self.last_ckpt, osp.join(self.out_dir, filename)
        self._written_at = runner.iter + (0 if by_epoch else 1)  # iterations done: mmengine's meta['iter']
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        with stop_on_write_error(self.last_ckpt, previous):
            runner.save_checkpoint(self.out_dir, filename + PARTIAL_SUFFIX, self.file_client_args,
                                   save_optimizer=self.save_optimizer, save_param_scheduler=self.save_param_scheduler,
                                   meta=meta, by_epoch=by_epoch, backend_args=self.backend_args, **self.args)
            if not is_main_process():  # the main process alone writes (Runner.save_checkpoint is master_only)
                return
            commit(self.last_ckpt + PARTIAL_SUFFIX, self.last_ckpt)
            write_atomic(osp.join(runner.work_dir, POINTER), self.last_ckpt)

    def _save_best_checkpoint(self, runner, metrics: Dict[str, float]) -> None:
        """mmengine's, but the new best file is written under a ``.partial`` name and renamed, and the previous best
        is deleted only after that: mmengine deletes it first and then writes in place, so a kill in between leaves
        no best checkpoint, or a truncated one."""
        deferred: List[str] = []
        save = runner.save_checkpoint

        def save_atomic(out_dir: str, filename: str, *args, **kwargs) -> None:
            if filename.endswith(PARTIAL_SUFFIX):  # the step checkpoint saved again: _save_checkpoint_with_step's
                return save(out_dir, filename, *args, **kwargs)
            path = osp.join(out_dir, filename)
            with stop_on_write_error(path, self.last_ckpt):
                save(out_dir, filename + PARTIAL_SUFFIX, *args, **kwargs)
                if is_main_process():
                    commit(path + PARTIAL_SUFFIX, path)

        runner.save_checkpoint, self.file_backend.remove = save_atomic, deferred.append  # shadow for this call
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            del runner.save_checkpoint, self.file_backend.remove
        for path in deferred:
            if osp.isfile(path):
                os.remove(path)


class NonFiniteLossHook(Hook):
    """Stop training with a ``FloatingPointError`` naming the iteration at the first NaN or infinite loss.

    The check runs after each iteration and before ``CheckpointHook`` (lower priority) could save the diverged
    weights, so the last checkpoint on disk is the last good one. Under DDP the ranks agree through one all-reduce,
    so all of them stop at the same iteration (a NaN on one rank reaches every rank's weights through the gradient
    all-reduce, while the other ranks' losses of that iteration may still be finite). mmdet's ``CheckInvalidLossHook``
    is a bare assert every 50 iterations and mmseg has none, hence this hook.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[Dict[str, Tensor]] = None) -> None:
        losses = {key: float(value) for key, value in (outputs or {}).items() if 'loss' in key}
        bad = {key: value for key, value in losses.items() if not math.isfinite(value)}
        flag = torch.tensor([float(bool(bad))], device=get_device())  # NCCL reduces GPU tensors only
        if runner.distributed:
            dist.all_reduce(flag)
        if flag.item() == 0:
            return
        detail = ', '.join(f'{key}={value}' for key, value in bad.items()) or 'on another rank'
        last = runner.message_hub.get_info('last_ckpt')
        kept = f'the last checkpoint, {last}, is kept' if last else 'no checkpoint had been written yet'
        raise FloatingPointError(f'non-finite loss at iteration {runner.iter + 1}: {detail}; training stopped and '
                                 f'{kept}. Lower the learning rate, clip gradients (optim_wrapper.clip_grad) or check '
                                 'the data and the loss weights')


class CheckpointFitHook(Hook):
    """Refuse a checkpoint that does not fit the model, before mmengine loads it with warnings only.

    mmengine loads ``load_from`` (and ``tools/test.py``'s checkpoint) non-strictly: a file of another model loads
    nothing and only logs warnings, and a backbone of another arch is skipped tensor by tensor. This raises a
    ``ValueError`` naming the file when no tensor fits, or when a ConvNeXt backbone tensor has another shape (the
    file's likely arch is named). Heads that differ (fine-tuning to other classes) stay mmengine's warnings.
    """

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # the wrapped model of a DDP wrapper or a test-time-augmentation model; FSDP's (1-D shards): its shapes
        wrapped = is_model_wrapper(runner.model) or isinstance(runner.model, BaseTTAModel)
        model = unsharded(runner) if is_fsdp(runner.model) else runner.model.module if wrapped else runner.model
        # the file being loaded: load_from (also --resume CKPT and the test checkpoint), else the auto-resumed one
        check_checkpoint_fits(model, checkpoint, runner.cfg.get('load_from') or find_latest_checkpoint(runner.work_dir))


def check_checkpoint_fits(model: nn.Module, checkpoint: dict, source: str) -> None:
    """Raise a ``ValueError`` naming ``source`` when none of the checkpoint's tensors fits ``model``, or when a
    ConvNeXt backbone tensor has another shape (the file's likely arch is named).

    Args:
        model: The model the checkpoint is loaded into (not a wrapper).
        checkpoint: The checkpoint as read: a ``state_dict`` container or the state dict itself.
        source: The file's name, for the message.
    """
    state = checkpoint.get('state_dict', checkpoint)
    state = {key[len('module.'):] if key.startswith('module.') else key: value  # mmengine's default revise_keys
             for key, value in state.items() if isinstance(value, Tensor)}
    own = model.state_dict()
    fitting = [key for key, value in state.items() if key in own and own[key].shape == value.shape]
    if not fitting:
        raise ValueError(f'checkpoint {source}: none of its {len(state)} tensors fits the '
                         f'{type(model).__name__} of this config (its keys start {_first(state)}, the '
                         f"model's {_first(own)}); it is a checkpoint of another model")
    backbone = getattr(model, 'backbone', None)
    if isinstance(backbone, ConvNeXt):
        _check_backbone(backbone, state, source)


def _first(keys: Sequence[str], count: int = 3) -> str:
    return ', '.join(list(keys)[:count]) or '(no tensors)'


def _check_backbone(backbone: ConvNeXt, state: Dict[str, Tensor], source: str) -> None:
    own = backbone.state_dict()
    file_backbone = {k[len(WHOLE_MODEL_PREFIX):]: v for k, v in state.items() if k.startswith(WHOLE_MODEL_PREFIX)}
    for name, value in file_backbone.items():
        if name in own:
            check_tensor_fits(source, WHOLE_MODEL_PREFIX + name, value, own[name], file_backbone, backbone,
                              setting='model.backbone.arch')


class DatasetCheckHook(Hook):
    """Check the data of a run before its datasets are built, before its first iteration, and in each batch.

    ``before_build`` (a stage ``convnext_dense.prebuild`` adds) checks the dataset configs of the loops about to be
    built: paths (naming the variable that moves the data root), annotation file, category ids, palette, and the heads
    against classes named in ``metainfo``. ``before_run`` checks each built dataset's image and label map files and
    its classes against every head (``class_checks``); each batch's label maps are checked against the class count.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._labels: Dict[str, tuple] = {}  # mode -> (number of classes, ignore index, config name)

    def before_build(self, runner, modes: Sequence[str]) -> None:
        """Check the dataset configs of the loops ``modes`` ('train', 'val', 'test') before they are built."""
        variables, model = config_variables(runner.cfg), runner.cfg.get('model') or {}
        for mode in modes:
            loader = getattr(runner, f'_{mode}_dataloader')
            if not isinstance(loader, Mapping):  # a DataLoader object passed in is the caller's
                continue
            cfg, name = loader.get('dataset') or {}, f'{mode}_dataloader.dataset'
            check_dataset_config(cfg, name, variables)
            # classes named in the config: checked now, before the optimizer and the rest are built
            check_classes(model, cfg.get('metainfo') or {}, name)

    def before_run(self, runner) -> None:
        for mode in ('train', 'val', 'test'):
            # the loops this run built; the public properties would build the others (and their datasets)
            loop = getattr(runner, f'_{mode}_loop')
            if not isinstance(loop, BaseLoop):
                continue
            name = f'{mode}_dataloader.dataset'
            cfg: Mapping = (runner.cfg.get(f'{mode}_dataloader') or {}).get('dataset') or {}
            dataset = loop.dataloader.dataset
            check_samples(dataset, cfg, name)
            check_classes(runner.cfg.get('model') or {}, dataset.metainfo, name)
            self._labels[mode] = (len(dataset.metainfo.get('classes', ())), getattr(dataset, 'ignore_index', 255),
                                  name)

    def _check_batch(self, mode: str, data_batch: Optional[dict]) -> None:
        if mode not in self._labels or not isinstance(data_batch, dict):
            return
        samples = list(data_batch.get('data_samples') or ())
        while samples and isinstance(samples[0], (list, tuple)):  # test-time augmentation: one list per image
            samples = [s for group in samples for s in group]
        for sample in samples:
            check_labels(sample, *self._labels[mode])

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        self._check_batch('train', data_batch)

    def before_val_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        self._check_batch('val', data_batch)

    def before_test_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        self._check_batch('test', data_batch)
