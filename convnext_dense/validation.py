"""Bad data fails when the dataset is built, with one line naming the file, key or value and what was expected.

``build_runner`` wraps every dataloader's dataset in ``CheckedDataset``, which adds the checks that mmdet 3.3 and
mmseg 1.2 lack; what they already handle is left to them (``tests/test_reliability.py`` proves each case):

===============================================  ==================================================================
Case                                             What the user gets
===============================================  ==================================================================
data_root / ann_file / image folder missing      ``FileNotFoundError`` naming the config key and the path (here)
annotation file not valid JSON                   ``ValueError`` naming the file, line and column (here)
category id not in ``categories``                ``ValueError`` naming the annotation, image and id (here)
category not in the config's classes             its annotations skipped by mmdet (training on a subset of classes)
image file missing, empty, truncated, corrupt    ``ValueError`` counting them, naming the first few (here); fail,
                                                 not skip: a skipped image silently changes the data
label map value >= number of classes             ``ValueError`` naming the file and the values (here), when the
                                                 sample loads; 255 is ignored as mmseg does
degenerate boxes (area or side < 1 px)           skipped by mmdet, as COCO does
images without annotations                       dropped from training by mmdet (``filter_empty_gt``), kept in
                                                 evaluation; a dataset left empty raises ``ValueError`` (here)
grayscale and RGBA images                        converted to 3 channels by mmcv's ``LoadImageFromFile``
images smaller than the backbone's stride        padded by the data preprocessor (``size_divisor`` / ``size``);
                                                 unpadded, ``ConvNeXt.forward`` raises ``ValueError``
===============================================  ==================================================================

Of images and label maps only the first and last bytes are read; a COCO annotation file is parsed once more
(about 10 s for train2017's 450 MB, once per run).
"""
import json
import os.path as osp
from typing import List, Mapping, Optional

from mmengine.config import Config, ConfigDict
from mmengine.registry import DATASETS
from torch import Tensor

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
SHOWN = 5  # bad files named in one message
OTHER_IMAGE_MAGIC = (b'BM', b'II*\0', b'MM\0*', b'GIF8', b'RIFF')  # BMP, TIFF, GIF, WEBP: existence checked only


def file_problem(path: str) -> Optional[str]:
    """What is wrong with an image or label map file, or None: reads its first 8 and last 64 bytes only."""
    try:
        with open(path, 'rb') as f:
            head = f.read(8)
            size = f.seek(0, 2)
            f.seek(max(0, size - 64))
            tail = f.read()
    except FileNotFoundError:
        return 'does not exist'
    except OSError as e:
        return f'cannot be read ({e.strerror})'
    if size == 0:
        return 'is empty'
    if head.startswith(b'\xff\xd8'):
        return None if tail.rstrip(b'\0').endswith(b'\xff\xd9') else 'is a truncated JPEG (no end-of-image marker)'
    if head.startswith(b'\x89PNG'):
        return None if b'IEND' in tail else 'is a truncated PNG (no IEND chunk)'
    if head.startswith(OTHER_IMAGE_MAGIC):
        return None
    return f'is not an image (starts with {head!r})'


def _resolve(root: str, path: str) -> str:
    return osp.join(root, path) if root and not osp.isabs(path) else path


def _check_paths(cfg: Mapping, name: str) -> None:
    """The data root, annotation file and data folders a dataset config names exist (local paths only)."""
    root = cfg.get('data_root') or ''
    if '://' in root:
        return
    if root and not osp.isdir(root):
        raise FileNotFoundError(f'{name}.data_root: {root!r} does not exist; set it (or the environment variable '
                                'the config reads it from) to the dataset folder')
    ann_file = cfg.get('ann_file')
    if ann_file and not osp.isfile(_resolve(root, ann_file)):
        raise FileNotFoundError(f'{name}.ann_file: {_resolve(root, ann_file)!r} does not exist')
    for key, prefix in (cfg.get('data_prefix') or {}).items():
        if prefix and not osp.isdir(_resolve(root, prefix)):
            raise FileNotFoundError(f'{name}.data_prefix.{key}: folder {_resolve(root, prefix)!r} does not exist')


def _check_coco(cfg: Mapping, name: str) -> None:
    """A COCO-style annotation file is valid JSON and each annotation's category_id is among its categories.

    mmdet would raise a JSON error without the file name, and silently drop annotations of unknown ids (it drops
    those of categories outside the config's classes by design, so these stay its business).
    """
    ann_file = _resolve(cfg.get('data_root') or '', cfg.get('ann_file') or '')
    if not ann_file.endswith('.json'):
        return
    try:
        with open(ann_file) as f:
            coco = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{name}.ann_file: {ann_file} is not valid JSON: {e.msg} at line {e.lineno} column '
                         f'{e.colno}') from e
    if not isinstance(coco, dict) or 'categories' not in coco:
        return  # not COCO: the dataset class reads it
    categories = {c['id'] for c in coco['categories']}
    for ann in coco.get('annotations', []):
        if ann.get('category_id') not in categories:
            raise ValueError(f"{name}.ann_file: {ann_file}: annotation {ann.get('id')} (image {ann.get('image_id')}) "
                             f"has category_id {ann.get('category_id')}, not one of the ids in \"categories\": "
                             f'{sorted(categories)}')


class CheckedDataset:
    """A dataset of any OpenMMLab toolkit, built and checked: paths, annotations, files, labels (module docstring).

    Everything else (``metainfo``, ``get_data_info``, ...) is the wrapped dataset's.

    Args:
        dataset: The config of the dataset to build.
        name: Where the config sits, for messages, e.g. 'train_dataloader.dataset'. Default: 'dataset'.
    """

    def __init__(self, dataset: dict, name: str = 'dataset') -> None:
        self.name = name
        _check_paths(dataset, name)
        _check_coco(dataset, name)
        empty = ValueError(f'{name}: no samples in {dataset.get("ann_file") or dataset.get("data_root")!r} (images '
                           'without annotations are dropped from training)')
        try:
            self.dataset = DATASETS.build(dataset)
        except ValueError as e:  # mmengine packs the samples with np.concatenate, which fails on none
            if 'need at least one array to concatenate' not in str(e):
                raise
            raise empty from e
        if len(self.dataset) == 0:
            raise empty
        self._check_files(dataset.get('ann_file'))

    def _check_files(self, ann_file: Optional[str]) -> None:
        problems: List[str] = []
        for index in range(len(self.dataset)):
            info = self.dataset.get_data_info(index)
            for key in ('img_path', 'seg_map_path'):
                path = info.get(key)
                problem = path and file_problem(path)
                if problem:
                    problems.append(f'{path} {problem}')
        if problems:
            named = f' (named by {ann_file})' if ann_file else ''
            raise ValueError(f'{self.name}: {len(problems)} of {len(self.dataset)} samples have a bad file{named}: '
                             f'{"; ".join(problems[:SHOWN])}{"; ..." if len(problems) > SHOWN else ""}. Fix or '
                             'remove them: they are not skipped')

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        data = self.dataset[index]
        sample = data.get('data_samples') if isinstance(data, dict) else None
        label = getattr(sample, 'gt_sem_seg', None)
        if label is not None:
            self._check_labels(label.data, sample.metainfo.get('seg_map_path'))
        return data

    def _check_labels(self, label: Tensor, path: Optional[str]) -> None:
        num_classes = len(self.dataset.metainfo['classes'])
        ignore = getattr(self.dataset, 'ignore_index', 255)
        values = label.unique()
        bad = values[(values >= num_classes) & (values != ignore)]
        if len(bad):
            raise ValueError(f'{self.name}: label map {path} holds class indices {bad.tolist()} (after '
                             f'reduce_zero_label, if set) but the config has {num_classes} classes: valid are '
                             f'0..{num_classes - 1} and {ignore} (ignored)')

    def __getattr__(self, name: str):
        if name == 'dataset':  # not set yet (unpickling in a dataloader worker): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


def check_datasets(cfg: Config) -> None:
    """Wrap the dataset of each dataloader in ``cfg`` in ``CheckedDataset`` (once), in place."""
    for loader in LOADERS:
        dataset = (cfg.get(loader) or {}).get('dataset')
        if dataset is not None and dataset.get('type') != 'CheckedDataset':
            cfg[loader]['dataset'] = ConfigDict(type='CheckedDataset', dataset=dataset, name=f'{loader}.dataset')
