"""``AtomicCheckpointHook``: mmengine's ``CheckpointHook`` whose checkpoints survive a kill at any moment."""
import os
import os.path as osp
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.runner import BaseLoop

from ...utils.atomic import PARTIAL_SUFFIX, commit, write_atomic
from ...utils.errors import ConfigError
from ..resume import POINTER, check_resume
from ..train_state import STATE_KEY, capture


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
        """Check what a training run resumes from (``engine.resume``) before mmengine loads anything."""
        if not isinstance(runner._train_loop, BaseLoop):  # testing: nothing is resumed
            return
        message = check_resume(runner.work_dir, runner.cfg.get('resume'), runner.cfg.get('load_from'))
        if message:
            runner.logger.info(message)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._written_at: Optional[int] = None  # the iterations done when this run last wrote a checkpoint
        if not isinstance(self.file_backend, LocalBackend):
            raise ConfigError(f'AtomicCheckpointHook writes local files; out_dir={self.out_dir!r} is not local: set '
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
