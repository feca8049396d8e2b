"""``ExactResumeHook``: continue a resumed run's data where the checkpoint left it (see ``engine.train_state``)."""
from typing import Optional

from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from ..train_state import STATE_KEY, RestartableData, ResumableBatchSampler, seeded_sampler, set_random_states


class ExactResumeHook(Hook):
    """Continue a resumed run's data where the checkpoint left it: an epoch-based run at the batch after the
    checkpoint's, with the random states it had there; an iteration-based run in the order of the checkpoint's
    sampler seed.

    ``after_load_checkpoint`` keeps the checkpoint's ``train_state``; ``before_train`` (after mmengine has resumed the
    counters, before an ``IterBasedTrainLoop`` replays the trained batches) acts when the run resumed from that
    checkpoint (its iteration is the run's). Inside an epoch of ``convnext_dense.CheckedEpochBasedTrainLoop`` it puts
    the sampler's seed back and arms the loader's ``ResumableBatchSampler``; for
    ``convnext_dense.CheckedIterBasedTrainLoop`` whose sampler drew another seed (``randomness=dict(seed=None)``)
    it restarts the loop's data with the checkpoint's seed (``restart_data``), so that mmengine's replay skips the
    batches the run trained and the run goes on with those it would have trained. A checkpoint of a run on another
    number of ranks, or another training loop, resumes with mmengine's re-seeding (the epoch's data from its first
    batch; the replay in the newly drawn order), and the log says so.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._loaded: Optional[dict] = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {})
        self._loaded = dict(meta[STATE_KEY], iter=meta.get('iter')) if STATE_KEY in meta else None

    def before_train(self, runner) -> None:
        loop, state = runner.train_loop, self._loaded
        if state is None or state['iter'] != runner.iter:
            return  # a fresh run, or load_from (fine-tuning starts at iteration 0)
        if isinstance(loop, EpochBasedTrainLoop):
            self._skip_in_epoch(runner, loop, state)
        elif isinstance(loop, IterBasedTrainLoop):
            self._replay_in_order(runner, loop, state)

    @staticmethod
    def _same_ranks(runner, state: dict, restart: str) -> bool:
        """Whether the checkpoint was written by as many ranks as this run has; warns with ``restart`` if not."""
        ranks = len(state['random_states'])
        if ranks != get_world_size():
            runner.logger.warning(f'the checkpoint was written by {ranks} ranks, this run has {get_world_size()}: '
                                  f'{restart}')
        return ranks == get_world_size()

    def _skip_in_epoch(self, runner, loop: EpochBasedTrainLoop, state: dict) -> None:
        loader = loop.dataloader
        skip = runner.iter - runner.epoch * len(loader)
        restart = f'epoch {runner.epoch + 1} starts again at its first batch and the random states are re-seeded'
        if not self._same_ranks(runner, state, restart):
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
        own = state['random_states'][get_rank()]
        batches.skip_first(skip, lambda: set_random_states(own))
        runner.logger.info(f'resuming inside epoch {runner.epoch + 1}: its first {skip} of {len(loader)} batches '
                           'are skipped unloaded, the random states are those of the checkpoint')

    def _replay_in_order(self, runner, loop: IterBasedTrainLoop, state: dict) -> None:
        sampler, seed = seeded_sampler(loop.dataloader), state['sampler_seed']
        if sampler is None or seed is None or sampler.seed == seed:
            return  # mmengine's replay is in the trained order already (a fixed seed), or in none we can restore
        restart = (f'mmengine replays the first {runner.iter} batches in the order of the seed this run drew, not the '
                   "checkpoint's: some images of the current pass are trained twice, others not at all")
        if not self._same_ranks(runner, state, restart):
            return
        if not isinstance(loop, RestartableData):
            runner.logger.warning(f'train_cfg.type is {type(loop).__name__}, not '
                                  "'convnext_dense.CheckedIterBasedTrainLoop' (whose data restarts with the "
                                  f"checkpoint's sampler seed): {restart}")
            return
        loop.restart_data(seed)
        runner.logger.info(f"resuming at iteration {runner.iter}: the sampler's seed is the checkpoint's, and "
                           f'mmengine replays the first {runner.iter} batches (loading them) to go on with the '
                           "next; the random states are mmengine's re-seeding, not the checkpoint's (the replay "
                           'draws augmentations)')
