"""``DatasetCheckHook``: the data checks of a run, before its datasets are built, before its first step, per batch."""
from typing import Dict, Mapping, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.runner import BaseLoop

from ...datasets.class_checks import check_classes
from ...datasets.dataset_checks import check_dataset_config, check_labels, check_samples, config_variables


class DatasetCheckHook(Hook):
    """Check the data of a run before its datasets are built, before its first iteration, and in each batch.

    ``before_build`` (a stage ``engine.prebuild`` adds) checks the dataset configs of the loops about to be
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
