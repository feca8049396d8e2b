"""``ExactResumeHook``: continue a resumed epoch at the batch after the checkpoint's (see ``engine.train_state``)."""
from typing import Optional

from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from ..train_state import STATE_KEY, ResumableBatchSampler, seeded_sampler, set_random_states


class ExactResumeHook(Hook):
    """Continue a resumed epoch-based run at the batch after the checkpoint's, with the random states it had there.

    ``after_load_checkpoint`` keeps the checkpoint's ``train_state``; ``before_train`` (after mmengine has resumed the
    counters) puts the sampler's seed back and arms the loader's ``ResumableBatchSampler`` when the run resumed from
    that checkpoint (its iteration is the run's) inside an epoch. A checkpoint of a run on another number of ranks, or
    a training loop other than ``convnext_dense.CheckedEpochBasedTrainLoop`` (whose loader has no
    ``ResumableBatchSampler``), resumes with mmengine's re-seeding and the epoch's data from its first batch, and the
    log says so.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._loaded: Optional[dict] = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {})
        self._loaded = dict(meta[STATE_KEY], iter=meta.get('iter')) if STATE_KEY in meta else None

    def before_train(self, runner) -> None:
        loop, state = runner.train_loop, self._loaded
        if state is None or state['iter'] != runner.iter or not isinstance(loop, EpochBasedTrainLoop):
            return  # a fresh run, load_from (fine-tuning starts at iteration 0), or mmseg's loop
        loader = loop.dataloader
        skip = runner.iter - runner.epoch * len(loader)
        states = state['random_states']
        restart = f'epoch {runner.epoch + 1} starts again at its first batch and the random states are re-seeded'
        if len(states) != get_world_size():
            runner.logger.warning(f'the checkpoint was written by {len(states)} ranks, this run has '
                                  f'{get_world_size()}: {restart}')
            return
        if skip <= 0:
            return  # an epoch's end: mmengine's re-seeding (validation and a new loader draw random numbers between)
        batches = loader.batch_sampler
        if not isinstance(batches, ResumableBatchSampler):
            runner.logger.warning(f'train_cfg.type is {type(loop).__name__}, not '
                                  f"'convnext_dense.CheckedEpochBasedTrainLoop' (whose loader can skip batches): "
                                  f'{restart}')
            return
        sampler = seeded_sampler(loader)
        if sampler is not None and state['sampler_seed'] is not None:
            sampler.seed = state['sampler_seed']  # a seed=None run draws a new one at each start
        own = states[get_rank()]
        batches.skip_first(skip, lambda: set_random_states(own))
        runner.logger.info(f'resuming inside epoch {runner.epoch + 1}: its first {skip} of {len(loader)} batches '
                           'are skipped unloaded, the random states are those of the checkpoint')
