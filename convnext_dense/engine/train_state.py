"""Resume inside an epoch, exactly: what a checkpoint needs beyond mmengine's, and ``ExactResumeHook``, which uses it.

mmengine's ``Runner.resume`` restores the epoch and iteration counters but its ``EpochBasedTrainLoop`` starts every
epoch's data loader at batch 0, and the run is re-seeded instead of continuing its random streams. Each checkpoint
that ``AtomicCheckpointHook`` writes therefore also holds ``meta['train_state']`` (``capture``): every rank's Python,
NumPy and torch random states and the sampler's seed. On a resume from a checkpoint written inside an epoch,
``ExactResumeHook`` wraps the training loader's batch sampler (``SkipBatches``) so that the batches already trained
are skipped as lists of indices, never loaded (mmdet's ``AspectRatioBatchSampler`` regroups the images each epoch, so
batches are skipped, not sample indices), and the random states are put back just before the next batch is fetched,
where the interrupted run stood: from there on, with ``num_workers=0``, the run's losses are the uninterrupted run's.

With loader workers the indices are the same, but a worker's augmentation stream restarts with the epoch's iterator
(mmengine seeds each worker from its id, rank and the run's seed only), so the rest of the resumed epoch draws other,
equally distributed augmentations; the model's own random draws (drop path, RoI sampling) continue exactly.
``IterBasedTrainLoop`` (mmseg) replays the consumed batches itself on resume, so only the epoch-based loop is wrapped.
"""
import random
from itertools import islice
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object

STATE_KEY = 'train_state'  # in a checkpoint's meta


def random_states() -> Dict[str, Any]:
    """This process's Python, NumPy and torch (CPU and, when present, CUDA) random states, as tensors and plain
    containers: what ``torch.load(weights_only=True)`` reads."""
    np_state = np.random.get_state(legacy=False)
    return dict(python=random.getstate(),
                numpy=dict(key=torch.from_numpy(np_state['state']['key'].astype(np.int64)),
                           pos=np_state['state']['pos'], has_gauss=np_state['has_gauss'], gauss=np_state['gauss']),
                torch=torch.get_rng_state(),
                cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])


def set_random_states(states: Dict[str, Any]) -> None:
    """Put back the states of ``random_states``."""
    version, internal, gauss = states['python']
    random.setstate((version, tuple(internal), gauss))
    numpy = states['numpy']
    np.random.set_state(dict(bit_generator='MT19937', has_gauss=numpy['has_gauss'], gauss=numpy['gauss'],
                             state=dict(key=numpy['key'].numpy().astype(np.uint32), pos=numpy['pos'])))
    torch.set_rng_state(states['torch'].cpu())
    if states['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state.cpu() for state in states['cuda']])


def _seeded_sampler(loader) -> Optional[Any]:
    """The sampler whose ``seed`` orders the epoch (mmengine's ``DefaultSampler``), directly or under a batch
    sampler."""
    for sampler in (loader.sampler, getattr(loader.batch_sampler, 'sampler', None)):
        if hasattr(sampler, 'seed'):
            return sampler
    return None


def capture(runner) -> Dict[str, Any]:
    """What ``ExactResumeHook`` restores: every rank's random states (a collective: every rank calls it) and the
    sampler's seed."""
    sampler = _seeded_sampler(runner.train_loop.dataloader)
    states = all_gather_object(random_states())  # [states] without a process group
    return dict(random_states=states, sampler_seed=getattr(sampler, 'seed', None))


class SkipBatches:
    """A batch sampler whose first iteration skips ``skip`` batches (lists of indices: nothing is loaded) and then
    calls ``on_resume`` before the next batch is fetched; later iterations are the wrapped sampler's.

    Args:
        batch_sampler: The loader's batch sampler; its attributes stay reachable (``sampler.set_epoch``).
        skip: How many batches of the first epoch were trained before the checkpoint.
        on_resume: Called once the batches are skipped (puts the random states back).
    """

    def __init__(self, batch_sampler, skip: int, on_resume: Callable[[], None]) -> None:
        self.batch_sampler, self.skip, self.on_resume = batch_sampler, skip, on_resume

    def __iter__(self) -> Iterator[List[int]]:
        batches = iter(self.batch_sampler)
        if self.skip is not None:
            for _ in islice(batches, self.skip):
                pass
            self.skip = None
            self.on_resume()
        yield from batches

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.batch_sampler, name)
