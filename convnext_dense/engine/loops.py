"""The loops of convnext_dense's configs: mmengine's four, plus what has to happen before they build their loaders.

A loop builds its data loader, and so its dataset, in its ``__init__``, before any hook stage: a missing data root or
annotation file would fail inside pycocotools or ``os.scandir``, with a traceback, before a hook could speak.
mmengine's ``Runner`` and ``FlexibleRunner`` (FSDP) both build a loop whose config has a ``type`` through ``LOOPS``,
whichever tool made the Runner: our tools, mmdet's and mmseg's ``tools/train.py`` and ``tools/test.py`` (also
mmdet's ``test.py --out``, which reads ``runner.test_evaluator`` and so builds the test loop before
``runner.test()``), ``Runner.from_cfg``, ``mim``. So each loop here, before mmengine's ``__init__`` builds the
loader, hands its loader config to the run's ``DatasetCheckHook`` (``check_config``; nothing where the run declares
no such hook), and the epoch-based training loop puts the config's batch sampler under ``ResumableBatchSampler``,
which ``ExactResumeHook`` arms on a resume inside an epoch (``engine.train_state``). The datasets stay the toolkits'
own classes, so the inferencers and ``--tta`` read their pipelines as usual.

``configs/_base_/reliability_hooks.py`` names the loops; the configs set them in their bodies (the stock schedules
already define ``train_cfg``, ``val_cfg`` and ``test_cfg``, and mmengine refuses a key set by two bases).
``DatasetCheckHook.before_run`` warns once where a run's loop is another, e.g. ``train_cfg=dict(by_epoch=True)``.
"""
from typing import Mapping, Union

from mmengine.dataset import InfiniteSampler
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop, TestLoop, ValLoop
from torch.utils.data import DataLoader

from ..utils.errors import ConfigTypeError
from .hooks.dataset_check_hook import DatasetCheckHook
from .train_state import ResumableBatchSampler, seeded_sampler

Loader = Union[DataLoader, Mapping]  # what mmengine passes a loop: a built loader or its config


def checked(runner, mode: str, dataloader: Loader) -> Loader:
    """``dataloader``, once each ``DatasetCheckHook`` of the run has checked its config for the loop ``mode``
    ('train', 'val' or 'test'). Hooks are registered when the Runner is made, loops later."""
    for hook in runner.hooks:
        if isinstance(hook, DatasetCheckHook):
            hook.check_config(runner, mode, dataloader)
    return dataloader


def resumable(dataloader: Loader) -> Loader:
    """A loader config whose batch sampler is ``ResumableBatchSampler`` around the config's own (torch's
    ``BatchSampler`` where it names none); a built loader, or a config with a built batch sampler, as it is."""
    if not isinstance(dataloader, Mapping) or not isinstance(dataloader.get('batch_sampler') or {}, Mapping):
        return dataloader
    cfg = dict(dataloader)
    inner = cfg.pop('batch_sampler', None)
    wrapper = dict(type=f'convnext_dense.{ResumableBatchSampler.__name__}', batch_sampler=inner)
    if inner is None:
        wrapper['drop_last'] = cfg.pop('drop_last', False)  # the loader refuses drop_last beside a batch sampler
        cfg.setdefault('batch_size', 1)  # the loader's default, which mmengine now passes to the batch sampler
    return dict(cfg, batch_sampler=wrapper)


class CheckedEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` (the same arguments; mmdet's recipes): the loader config checked before it
    is built, and a batch sampler that lets a resumed epoch continue at the batch after the checkpoint's."""

    def __init__(self, runner, dataloader: Loader, **kwargs) -> None:
        super().__init__(runner, resumable(checked(runner, 'train', dataloader)), **kwargs)


class CheckedIterBasedTrainLoop(IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` (the same arguments; mmseg's recipes and Mask2Former's): the loader config
    checked before it is built. On resume mmengine's loop replays the consumed batches itself, in the order of the
    sampler's seed, which ``ExactResumeHook`` first puts back with ``restart_data``."""

    def __init__(self, runner, dataloader: Loader, **kwargs) -> None:
        super().__init__(runner, checked(runner, 'train', dataloader), **kwargs)

    def restart_data(self, seed: int) -> None:
        """Order the data by the sampler seed ``seed`` and start the loop's data iterator again at its first batch.

        The loop made its iterator in ``__init__``, before a checkpoint was loaded; with loader workers that iterator
        has already drawn indices from the sampler. mmengine's ``InfiniteSampler`` draws every index of the run from
        one generator (``indices``), started by that first read and closed with the iterator that read it, so it
        gets the generator of an ``InfiniteSampler`` built with ``seed`` (docs/openmmlab_internals.md).
        """
        sampler = seeded_sampler(self.dataloader)
        if sampler is None:
            raise ConfigTypeError(f'the train loader has no sampler with a seed (mmengine\'s DefaultSampler or '
                                  f'InfiniteSampler): its sampler is {type(self.dataloader.sampler).__name__}')
        sampler.seed = seed
        if isinstance(sampler, InfiniteSampler):
            sampler.indices = type(sampler)(sampler.dataset, shuffle=sampler.shuffle, seed=seed).indices
        self.dataloader_iterator = type(self.dataloader_iterator)(self.dataloader)  # mmengine's, as __init__ made it


class CheckedValLoop(ValLoop):
    """mmengine's ``ValLoop`` (the same arguments): the loader config checked before it is built."""

    def __init__(self, runner, dataloader: Loader, **kwargs) -> None:
        super().__init__(runner, checked(runner, 'val', dataloader), **kwargs)


class CheckedTestLoop(TestLoop):
    """mmengine's ``TestLoop`` (the same arguments): the loader config checked before it is built."""

    def __init__(self, runner, dataloader: Loader, **kwargs) -> None:
        super().__init__(runner, checked(runner, 'test', dataloader), **kwargs)


CHECKED_LOOPS = (CheckedEpochBasedTrainLoop, CheckedIterBasedTrainLoop, CheckedValLoop, CheckedTestLoop)
