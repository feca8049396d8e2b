"""Reading mmengine's scalar logs: training curves as a PNG and the time per iteration.

mmengine's ``LoggerHook`` writes one JSON object per line to ``work_dir/<timestamp>/vis_data/scalars.json`` (and the
same lines to ``<timestamp>.json`` beside it). Training lines carry ``iter`` (the global iteration), ``lr``, the
losses, ``time`` and ``data_time`` (seconds per iteration, averaged over the logging interval), and ``epoch`` in
epoch-based runs. Validation lines carry the metrics (``coco/bbox_mAP``, ``mIoU``, ...) and ``step``: the iteration
in iteration-based runs, the epoch in epoch-based runs.
"""
import json
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..utils.errors import ConfigError, DataError, MissingFileError


@dataclass
class ScalarLog:
    """One scalars file, split into training and validation records.

    Attributes:
        path: The file.
        train: Training records in file order.
        val: Validation records in file order, each with ``iter`` added: its step in iterations.
    """
    path: str
    train: List[dict] = field(default_factory=list)
    val: List[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``<work dir>/<timestamp>`` for a file in mmengine's layout, else the file name."""
        p = Path(self.path).resolve()
        if p.parent.name == 'vis_data':
            return f'{p.parents[2].name}/{p.parents[1].name}'
        return p.name

    def series(self, key: str) -> Tuple[List[int], List[float]]:
        """(iterations, values) of ``key`` from the training records if they have it, else the validation ones."""
        records = self.train if any(key in r for r in self.train) else self.val
        points = [(r['iter'], r[key]) for r in records if key in r]
        return [p[0] for p in points], [p[1] for p in points]


def load_scalars(path: Union[str, os.PathLike]) -> ScalarLog:
    """Read a scalars file; validation steps of epoch-based runs become the last logged iteration of that epoch.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a line is not JSON, or the file has no records.
    """
    if not os.path.isfile(path):
        raise MissingFileError(f'log file {path} does not exist; mmengine writes work_dir/<timestamp>/vis_data/'
                               'scalars.json')
    log = ScalarLog(str(path))
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f'{path}:{number} is not a JSON line ({e}); expected mmengine\'s scalars.json') \
                    from e
            (log.train if 'iter' in record else log.val).append(record)
    if not log.train and not log.val:
        raise DataError(f'{path} holds no records')
    by_epoch = any('epoch' in r for r in log.train)
    for record in log.val:
        step = record['step']
        record['iter'] = max((r['iter'] for r in log.train if r['epoch'] <= step), default=0) if by_epoch else step
    return log


def plot_curves(logs: Sequence[ScalarLog], keys: Sequence[str], out: Union[str, os.PathLike],
                title: Optional[str] = None) -> List[str]:
    """Draw each key against the iteration, one panel per key and one line per log, into an image file.

    Args:
        logs: Loaded logs; each is a line (labelled by ``ScalarLog.label``) in every panel whose key it has.
        keys: Scalars to draw, e.g. ``loss``, ``coco/bbox_mAP``, ``mIoU``; a key that no log has is skipped, so one
            command line serves detection and segmentation logs.
        out: Output image; the format follows the extension (.png, .pdf, .svg).
        title: Figure title. Default: None.

    Returns:
        The keys drawn.

    Raises:
        ValueError: none of ``keys`` is in any log (the message lists the keys there are).
    """
    import matplotlib
    matplotlib.use('Agg')  # files only: no display needed
    import matplotlib.pyplot as plt

    drawn = [key for key in keys if any(log.series(key)[0] for log in logs)]
    if not drawn:
        available = sorted({k for log in logs for r in log.train + log.val for k in r} - {'iter', 'step', 'epoch'})
        raise ConfigError(f'none of the keys {list(keys)} is in the logs; available: {available}')
    fig, axes = plt.subplots(len(drawn), 1, figsize=(8, 3 * len(drawn)), squeeze=False, sharex=True)
    for ax, key in zip(axes[:, 0], drawn):
        for i, log in enumerate(logs):
            x, y = log.series(key)
            if x:
                is_val = not any(key in r for r in log.train)
                # one colour per log in every panel, markers for the sparse validation points
                ax.plot(x, y, color=f'C{i % 10}', marker='o' if is_val else None, label=log.label)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize='small')
    axes[-1, 0].set_xlabel('iteration')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return drawn


@dataclass
class TrainTime:
    """Seconds per training iteration of one log.

    Attributes:
        iters: The last logged iteration.
        mean: Mean of the logged ``time`` over the logging intervals, the first one left out when there are
            others (it includes start-up: data workers, allocator warm-up).
        std: Standard deviation of the same.
        data_mean: Mean ``data_time``: the part spent waiting for data.
        epochs: Mean ``time`` per epoch, for epoch-based runs.
    """
    iters: int
    mean: float
    std: float
    data_mean: float
    epochs: Dict[int, float] = field(default_factory=dict)


def train_time(log: ScalarLog) -> TrainTime:
    """The time per iteration of a log's training records.

    Raises:
        ValueError: the log has no training records with ``time``.
    """
    timed = [r for r in log.train if 'time' in r]
    if not timed:
        raise DataError(f'{log.path} has no training records with "time"')
    steady = timed[1:] or timed
    times = [r['time'] for r in steady]
    epochs: Dict[int, List[float]] = {}
    for r in steady:
        if 'epoch' in r:
            epochs.setdefault(r['epoch'], []).append(r['time'])
    return TrainTime(iters=timed[-1]['iter'], mean=statistics.fmean(times), std=statistics.pstdev(times),
                     data_mean=statistics.fmean(r.get('data_time', 0.0) for r in steady),
                     epochs={e: statistics.fmean(t) for e, t in epochs.items()})


def format_train_time(log: ScalarLog, t: TrainTime) -> str:
    """A short report: mean and spread of s/iter, the data-loading share, slowest and fastest epoch, total."""
    lines = [f'{log.label}: {log.path}',
             f'  time per iteration: {t.mean:.4f} s (std {t.std:.4f}), of which data loading {t.data_mean:.4f} s',
             f'  {t.iters} iterations at that rate: {t.iters * t.mean / 3600:.2f} h']
    if len(t.epochs) > 1:
        slowest = max(t.epochs, key=t.epochs.get)
        fastest = min(t.epochs, key=t.epochs.get)
        lines.append(f'  slowest epoch {slowest} ({t.epochs[slowest]:.4f} s/iter), fastest epoch {fastest} '
                     f'({t.epochs[fastest]:.4f} s/iter)')
    return '\n'.join(lines)
