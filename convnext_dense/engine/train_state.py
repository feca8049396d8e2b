"""Resume inside an epoch, exactly: what a checkpoint needs beyond mmengine's, and the batch sampler that uses it.

mmengine's ``Runner.resume`` restores the epoch and iteration counters but its ``EpochBasedTrainLoop`` starts every
epoch's data loader at batch 0, and the run is re-seeded instead of continuing its random streams. Each checkpoint
that ``AtomicCheckpointHook`` writes therefore also holds ``meta['train_state']`` (``capture``): every rank's Python,
NumPy and torch random states and the sampler's seed. ``CheckedEpochBasedTrainLoop`` (``engine/loops.py``) builds
its loader with ``ResumableBatchSampler`` around the config's batch sampler; on a resume from a checkpoint written
inside an epoch, ``ExactResumeHook`` puts the sampler's seed back and arms that sampler (``skip_first``), so that
the batches already trained are skipped as lists of indices, never loaded (mmdet's ``AspectRatioBatchSampler``
regroups the images each epoch, so batches are skipped, not sample indices), and the random states are put back just
before the next batch is fetched, where the interrupted run stood: from there on, with ``num_workers=0``, the run's
losses are the uninterrupted run's. A checkpoint of a run on another number of ranks resumes with mmengine's
re-seeding and the epoch's data from its first batch, and the log says so.

With loader workers the indices are the same, but a worker's augmentation stream restarts with the epoch's iterator
(mmengine seeds each worker from its id, rank and the run's seed only), so the rest of the resumed epoch draws other,
equally distributed augmentations; the model's own random draws (drop path, RoI sampling) continue exactly.

``IterBasedTrainLoop`` (mmseg's recipes, Mask2Former's) replays the consumed batches itself on resume, loading them,
in the order of the sampler's seed; a run with ``randomness=dict(seed=None)`` draws another seed at each start and
would replay, and then train, another order: images of the current pass trained twice, others never. So for
``CheckedIterBasedTrainLoop`` (``RestartableData``) ``ExactResumeHook`` puts the checkpoint's sampler seed back and
restarts the loop's data before the replay, and the run trains the batches the uninterrupted run would have. The
random states are not put back there: the replay loads the batches again, and their augmentations draw random
numbers (in the loader workers too), so the checkpoint's states would have to be set after the replay in each process
that draws, which mmengine's loop offers no point for. The resumed run goes on from mmengine's re-seeding with the
checkpoint's ``meta['seed']``: the same images in the same order, other (equally distributed) random draws.
"""
import random
from itertools import islice
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol, Tuple, runtime_checkable

import numpy as np
import torch
from mmengine.dist import all_gather_object
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import BatchSampler, DataLoader, Sampler

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


def seeded_sampler(loader: DataLoader) -> Optional[Any]:
    """The sampler whose ``seed`` orders the epoch (mmengine's ``DefaultSampler``), directly or under a batch
    sampler; None if there is none."""
    for sampler in (loader.sampler, getattr(loader.batch_sampler, 'sampler', None)):
        if hasattr(sampler, 'seed'):
            return sampler
    return None


@runtime_checkable
class RestartableData(Protocol):
    """A training loop whose data can start again in another sampler order (``CheckedIterBasedTrainLoop``)."""

    def restart_data(self, seed: int) -> None:
        """Order the data by the sampler seed ``seed`` and start the loop's data iterator again at its first batch."""


def capture(runner) -> Dict[str, Any]:
    """What ``ExactResumeHook`` restores: every rank's random states (a collective: every rank calls it) and the
    sampler's seed."""
    sampler = seeded_sampler(runner.train_loop.dataloader)
    states = all_gather_object(random_states())  # [states] without a process group
    return dict(random_states=states, sampler_seed=getattr(sampler, 'seed', None))


class ResumableBatchSampler(Sampler[List[int]]):
    """The batches of the config's batch sampler; armed by ``skip_first``, its next iteration skips the batches
    already trained (lists of indices: nothing is loaded) and calls back before the next batch is fetched.

    mmengine's ``Runner.build_dataloader`` builds it from the loader config that ``CheckedEpochBasedTrainLoop`` wraps,
    passing ``sampler`` and ``batch_size``; the loader holds it from the start, so nothing is swapped in a built
    ``DataLoader`` (which refuses a new batch sampler).

    Args:
        sampler: The loader's sampler (mmengine's ``DefaultSampler``); reachable as ``sampler``, where mmengine's
            ``DistSamplerSeedHook`` sets its epoch.
        batch_size: Samples per batch.
        batch_sampler: The config's own batch sampler (mmdet's ``AspectRatioBatchSampler``), built from the
            ``DATA_SAMPLERS`` of the run's scope with ``sampler`` and ``batch_size`` as mmengine builds it; None
            (default) for torch's ``BatchSampler``, which the loader would build otherwise.
        drop_last: torch's ``BatchSampler`` drops the last, incomplete batch (only with ``batch_sampler=None``; the
            loader's ``drop_last``). Default: False.
    """

    def __init__(self, sampler: Sampler, batch_size: int, batch_sampler: Optional[dict] = None,
                 drop_last: bool = False) -> None:
        super().__init__()
        self.sampler, self.batch_size = sampler, batch_size
        self.batch_sampler = BatchSampler(sampler, batch_size, drop_last) if batch_sampler is None else \
            DATA_SAMPLERS.build(batch_sampler, default_args=dict(sampler=sampler, batch_size=batch_size))
        self._pending: Optional[Tuple[int, Callable[[], None]]] = None  # what skip_first armed

    def skip_first(self, batches: int, then: Callable[[], None]) -> None:
        """Make the next iteration skip its first ``batches`` batches, then call ``then`` (it puts the random
        states back) before the next batch is fetched; later iterations are the wrapped sampler's."""
        self._pending = (batches, then)

    def __iter__(self) -> Iterator[List[int]]:
        batches = iter(self.batch_sampler)
        if self._pending is not None:
            (skip, then), self._pending = self._pending, None
            for _ in islice(batches, skip):
                pass
            then()
        yield from batches

    def __len__(self) -> int:
        return len(self.batch_sampler)
