"""Whether a training run learned, read from what it leaves in its work_dir: the per-iteration records mmengine's
``LocalVisBackend`` writes (``WORK_DIR/TIMESTAMP/vis_data/scalars.json``) and how far the optimizer moved parameters
whose initial values are known constants (norm weights 1, biases 0) by the last checkpoint.

A loss that exists proves a forward pass; a few iterations on random crops give losses too noisy to fall reliably.
Adam moves each parameter by about its learning rate per step whatever the gradient's size, so after the run such a
parameter sits about the sum of the steps' learning rates from its initial value: with ``lr=0``, or the parameter
left out of the optimizer, it has not moved at all. (Norm statistics are no evidence: a forward pass moves them.)
"""
import json
from pathlib import Path
from typing import List, Mapping, Sequence

from torch import Tensor


def train_records(work: Path) -> List[dict]:
    """The records of the training iterations (those with a ``loss``) of the one run in ``work``."""
    (path,) = work.glob('*/vis_data/scalars.json')
    return [r for r in map(json.loads, path.read_text().splitlines()) if 'loss' in r]


def assert_moved_by_the_steps(state: Mapping[str, Tensor], names: Sequence[str], steps: float) -> None:
    """Every element of the parameters ``names`` of ``state`` (initialised to 1 where the name ends in ``weight``, to
    0 otherwise) moved, the largest by 0.5x to 1.5x ``steps``: the sum of the learning rates of the run's steps."""
    assert names
    moves = {name: (state[name] - (1.0 if name.endswith('weight') else 0.0)).abs() for name in names}
    still = [name for name, move in moves.items() if not move.min() > 0]
    assert not still, f'not moved from their initial values: {still}'
    largest = max(float(move.max()) for move in moves.values())
    assert 0.5 * steps < largest <= 1.5 * steps, f'moved at most {largest:.3g} in steps of lr summing to {steps:.3g}'
