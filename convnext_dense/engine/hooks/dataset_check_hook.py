"""``DatasetCheckHook``: the data checks of a run, before its datasets are built, before its first step, per batch."""
from typing import Dict, Mapping, Optional, Set, Tuple, Union

from mmengine.hooks import Hook
from mmengine.runner import BaseLoop
from torch.utils.data import DataLoader

from ...datasets.class_checks import check_classes
from ...datasets.dataset_checks import (
    check_dataset_config,
    check_labels,
    check_samples,
    config_variables,
    strict_annotations,
)

MODES = ('train', 'val', 'test')
# where a run's loop is not ours; the loop classes live above the hooks (engine/loops.py), hence their names here
LOOPS_HINT = ("convnext_dense's loops run them (configs/_base_/reliability_hooks.py: train_cfg=dict(type="
              "'convnext_dense.CheckedEpochBasedTrainLoop' or 'convnext_dense.CheckedIterBasedTrainLoop', ...), "
              "val_cfg=dict(type='convnext_dense.CheckedValLoop'), "
              "test_cfg=dict(type='convnext_dense.CheckedTestLoop'))")


class DatasetCheckHook(Hook):
    """Check the data of a run before its datasets are built, before its first iteration, and in each batch.

    ``check_config`` checks the dataset config of a loop before the loop builds its loader: paths (naming the
    variable that moves the data root), annotation file, category ids, class names against the file's categories,
    palette, and the heads against classes named in ``metainfo``; convnext_dense's loops (``engine/loops.py``) call
    it, and ``before_run`` warns once where a loop of the run is another (the datasets were built unchecked). What
    ``datasets.coco_checks`` only warns about (classes without annotations in a split, annotations mmdet leaves out
    or marks ignored) is logged once; the config's ``strict_annotations = True`` (or ``--cfg-options
    strict_annotations=True``) makes annotations left out, or ignored for their polygons, an error. ``before_run``
    checks each built dataset's image and label map files and its classes against every head (``class_checks``);
    each batch's label maps are checked against the class count.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._labels: Dict[str, tuple] = {}  # mode -> (number of classes, ignore index, config name)
        self._config: Optional[Tuple[Dict[str, str], Mapping, bool]] = None  # variables, model, strict: read once
        self._said: Set[str] = set()  # warnings logged (val and test often share a dataset config)
        self._prechecked: Set[str] = set()  # the modes whose loop called check_config
        self._warned = False

    def check_config(self, runner, mode: str, dataloader: Union[Mapping, DataLoader]) -> None:
        """Check the dataset config of the loop ``mode`` ('train', 'val' or 'test') before it builds ``dataloader``
        (its config; a ``DataLoader`` passed in built is the caller's, and checked in ``before_run`` only)."""
        self._prechecked.add(mode)
        if not isinstance(dataloader, Mapping):
            return
        variables, model, strict = self._read_config(runner)
        cfg, name = dataloader.get('dataset') or {}, f'{mode}_dataloader.dataset'
        for line in check_dataset_config(cfg, name, variables, strict):
            if line not in self._said:
                self._said.add(line)
                runner.logger.warning(line)
        # classes named in the config: checked now, before the optimizer and the rest are built
        check_classes(model, cfg.get('metainfo') or {}, name)

    def _read_config(self, runner) -> Tuple[Dict[str, str], Mapping, bool]:
        """The config's variables, model and ``strict_annotations``, read once for every loop and stage."""
        if self._config is None:
            self._config = config_variables(runner.cfg), runner.cfg.get('model') or {}, strict_annotations(runner.cfg)
        return self._config

    def before_run(self, runner) -> None:
        # the loops this run built; the public properties would build the others (and their datasets)
        built = {mode: getattr(runner, f'_{mode}_loop') for mode in MODES}
        built = {mode: loop for mode, loop in built.items() if isinstance(loop, BaseLoop)}
        unchecked = [f'{mode}_cfg.type={type(loop).__name__}' for mode, loop in built.items()
                     if mode not in self._prechecked]
        if unchecked and not self._warned:
            self._warned = True
            runner.logger.warning(f"the dataset configs' checks before building (paths, annotation file, classes) are "
                                  f"off for {', '.join(unchecked)}: {LOOPS_HINT}; the built datasets are checked now")
        for mode, loop in built.items():
            name = f'{mode}_dataloader.dataset'
            cfg: Mapping = (runner.cfg.get(f'{mode}_dataloader') or {}).get('dataset') or {}
            dataset = loop.dataloader.dataset
            check_samples(dataset, cfg, name)
            check_classes(self._read_config(runner)[1], dataset.metainfo, name)
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
