"""Checks of a dataset that mmdet 3.3 and mmseg 1.2 lack, each failing with one line naming the file, key or value.

``DatasetCheckHook``, which every shipped config declares, runs them on each dataset a run uses: the config
checks before the loops build the datasets (``engine/loops.py``), the sample and class checks (``class_checks``) before
the first iteration, and the label-map check on each batch; ``build_checked_dataset`` runs them around building one
dataset (the browse tool). What the toolkits already handle is left to them (``tests/test_reliability.py`` proves
each case):

===============================================  ==================================================================
Case                                             What the user gets
===============================================  ==================================================================
data_root / ann_file / image folder missing      ``MissingFileError`` naming the config key, the path and the
                                                 environment variable that moves the data root (here)
heads' class count differs from the dataset's    ``ConfigError`` naming each config key and the value it needs
                                                 (``class_checks``)
palette length differs from the classes          ``ConfigError`` naming both counts (``class_checks``)
annotation file not valid JSON                   ``DataError`` naming the file, line and column (``coco_checks``)
category id not in ``categories``                ``DataError`` naming the annotation (or panoptic segment), image
                                                 and id (``coco_checks``)
a class that is no category of the file          ``ConfigError`` naming the file, the class and the file's
(none at all: mmengine's ``need at least one     categories (``coco_checks``); the dataset class's own classes
array to concatenate``)                          count where the config names none
a class with no annotation in a split            a warning naming the classes (``coco_checks``): normal in a
                                                 small validation split
category not in the config's classes             its annotations skipped by mmdet (training on a subset of classes);
                                                 in a panoptic file, ``ConfigError`` naming the categories
                                                 (``coco_checks``): mmdet has no filter there (a ``KeyError``)
annotation without ``bbox`` / ``area``; a kept   ``DataError`` naming the file, annotation, image and key
instance annotation without a segmentation       (``coco_checks``) instead of mmdet's ``KeyError`` (of ``'mask'``:
where the pipeline loads masks                   at the first batch)
classes in another order than the file's         ``ConfigError`` naming the order to use (``coco_checks``): mmdet
                                                 numbers the labels in the file's order, the classes name them
image file missing, empty, truncated, corrupt    ``DataError`` counting them, naming the first few (here); fail,
                                                 not skip: a skipped image silently changes the data (in mmseg's
                                                 folder layout, a missing image is found by its label map)
label map value >= number of classes             ``DataError`` naming the file and the values (here), when its
                                                 batch is run; 255 is ignored as mmseg does
box empty after clipping to its image, area      left out by mmdet, as are polygons of under 3 points and crowd
<= 0, width or height < 1; instance masks        annotations marked ignored: one warning counting each kind with
without a polygon of 3 points; crowd             the first ids (``coco_checks``); the config's
                                                 ``strict_annotations=True`` makes all but crowd an error
images without annotations                       dropped from training by mmdet (``filter_empty_gt``), kept in
                                                 evaluation; a dataset left empty raises ``DataError`` (here)
grayscale and RGBA images                        converted to 3 channels by mmcv's ``LoadImageFromFile``
images smaller than the backbone's stride        padded by the data preprocessor (``size_divisor`` / ``size``);
                                                 unpadded, ``ConvNeXt.forward`` raises ``ValueError``
===============================================  ==================================================================

The errors are ``convnext_dense.utils.errors``' markers of a user's mistake (``ValueError`` / ``FileNotFoundError``
subclasses).

Of images and label maps only the first and last bytes are read; a COCO annotation file is parsed once more
(about 10 s for train2017's 450 MB, once per run).
"""
import logging
import os
import os.path as osp
import re
from typing import Any, Dict, List, Mapping, Optional, Set, Sized

from mmengine.registry import DATASETS

from ..utils.errors import ConfigError, DataError, MissingFileError
from ..utils.logging import print_log
from .class_checks import check_palette
from .coco_checks import check_coco

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


README_SECTION = 'README: "Train on your own data"'
# mmengine's pattern of an environment variable in a config file: {{$NAME:default}}
CONFIG_VARIABLE = re.compile(r'\{\{[\'\"]?\s*\$(\w+)\s*\:\s*(\S*?)\s*[\'\"]?\}\}')


def config_variables(cfg: Any) -> Dict[str, str]:
    """{name: value} of each environment variable a parsed mmengine ``Config`` reads (``{{$NAME:default}}`` in it or
    its bases): the value it was read with, the default where the variable was not set (mmengine records only those
    that were)."""
    defaults = dict(CONFIG_VARIABLE.findall(getattr(cfg, 'text', '') or ''))
    return {**defaults, **getattr(cfg, 'env_variables', {})}


def _moved_by(root: str, variables: Mapping[str, str]) -> Optional[str]:
    """The environment variable the config read ``root`` from, if any."""
    same = [var for var, value in variables.items() if value and osp.normpath(value) == osp.normpath(root)]
    return same[0] if same else None


def strict_annotations(cfg: Mapping) -> bool:
    """The config's ``strict_annotations`` (default False): annotations mmdet would leave out are an error."""
    strict = cfg.get('strict_annotations', False)
    if not isinstance(strict, bool):
        raise ConfigError(f'strict_annotations={strict!r}; valid: True (annotations mmdet would leave out are an '
                          'error) or False (a warning; the default)')
    return strict


def _missing(name: str, key: str, what: str, root: str, variables: Mapping[str, str]) -> MissingFileError:
    variable = _moved_by(root, variables) if root else None
    if variable:
        fix = f'the config reads data_root from {variable}: set {variable} to your dataset folder'
    else:
        fix = f'set {name}.data_root / {name}.{key} (in the config or with --cfg-options) to your dataset'
    return MissingFileError(f'{name}.{key}: {what} does not exist; {fix} ({README_SECTION})')


def _check_paths(cfg: Mapping, name: str, variables: Mapping[str, str]) -> None:
    """The data root, annotation file and data folders a dataset config names exist (local paths only)."""
    root = cfg.get('data_root') or ''
    if '://' in root:
        return
    if root and not osp.isdir(root):
        raise _missing(name, 'data_root', repr(root), root, variables)
    ann_file = cfg.get('ann_file')
    if ann_file and not osp.isfile(_resolve(root, ann_file)):
        raise _missing(name, 'ann_file', f'annotation file {_resolve(root, ann_file)!r}', root, variables)
    for key, prefix in (cfg.get('data_prefix') or {}).items():
        if prefix and not osp.isdir(_resolve(root, prefix)):
            raise _missing(name, f'data_prefix.{key}', f'folder {_resolve(root, prefix)!r}', root, variables)


def check_dataset_config(cfg: Mapping, name: str, variables: Optional[Mapping[str, str]] = None,
                         strict: bool = False) -> List[str]:
    """Before a dataset is built: its data root, annotation file and data folders exist, a COCO annotation file
    fits the config (``coco_checks``), and a palette in its metainfo has a colour per class.

    Args:
        cfg: The dataset's config.
        name: Where the config sits, for messages, e.g. 'train_dataloader.dataset'.
        variables: The environment variables the config was read with (``Config.env_variables``), to name the one
            that moves a missing data root. Default: none.
        strict: Annotations mmdet would leave out are an error, not a warning (the config's
            ``strict_annotations``). Default: False.

    Returns:
        The warnings to log, one line each.
    """
    _check_paths(cfg, name, variables or {})
    ann_file = _resolve(cfg.get('data_root') or '', cfg.get('ann_file') or '')
    said = check_coco(ann_file, cfg, name, strict) if ann_file.endswith('.json') else []
    check_palette(cfg.get('metainfo') or {}, name)
    return said


def _empty(cfg: Mapping, name: str) -> DataError:
    return DataError(f'{name}: no samples in {cfg.get("ann_file") or cfg.get("data_root")!r}: it lists no images, or '
                     '(training) none of its images has an annotation of the classes '
                     '(filter_cfg.filter_empty_gt leaves such images out)')


def _images_missing_for_label_maps(dataset: Any, named: Set[str]) -> List[str]:
    """Problems of mmseg's folder layout (no ``ann_file``): it lists the image folder, so an image that is missing
    drops its sample without a word and leaves its label map behind; each label map not in ``named`` (the
    normalised label-map paths of the samples) names its image here."""
    prefix = getattr(dataset, 'data_prefix', None) or {}
    img_dir, seg_dir = prefix.get('img_path'), prefix.get('seg_map_path')
    seg_suffix, img_suffix = getattr(dataset, 'seg_map_suffix', None), getattr(dataset, 'img_suffix', None)
    if getattr(dataset, 'ann_file', None) or not (img_dir and seg_dir and seg_suffix and img_suffix) or \
            not osp.isdir(seg_dir):
        return []
    problems = []
    for folder, _, files in sorted(os.walk(seg_dir)):
        for file in sorted(f for f in files if f.endswith(seg_suffix)):
            label_map = osp.normpath(osp.join(folder, file))
            if label_map not in named:
                relative = osp.relpath(label_map, seg_dir)[:-len(seg_suffix)] + img_suffix
                problems.append(f'{osp.join(img_dir, relative)} does not exist (its label map {label_map} does)')
    return problems


def check_samples(dataset: Sized, cfg: Mapping, name: str) -> None:
    """After a dataset is built: it has samples, and every image and label map it names is a whole image file (in
    mmseg's folder layout, every label map also has its image).

    Args:
        dataset: The built dataset (``get_data_info`` gives each sample's ``img_path`` / ``seg_map_path``).
        cfg: Its config, for messages.
        name: Where the config sits, for messages.
    """
    if len(dataset) == 0:
        raise _empty(cfg, name)
    problems: List[str] = []
    label_maps = set()
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        for key in ('img_path', 'seg_map_path'):
            path = info.get(key)
            problem = path and file_problem(path)
            if problem:
                problems.append(f'{path} {problem}')
        if info.get('seg_map_path'):
            label_maps.add(osp.normpath(info['seg_map_path']))
    dropped = _images_missing_for_label_maps(dataset, label_maps)
    problems = dropped + problems
    samples = len(dataset) + len(dropped)  # the dataset left those samples out
    if problems:
        ann_file = cfg.get('ann_file')
        named = f' (named by {_resolve(cfg.get("data_root") or "", ann_file)})' if ann_file else ''
        raise DataError(f'{name}: {len(problems)} of {samples} samples have a bad file{named}: '
                         f'{"; ".join(problems[:SHOWN])}{"; ..." if len(problems) > SHOWN else ""}. Fix or '
                         'remove them: they are not skipped')


def check_labels(sample: Any, num_classes: int, ignore_index: int, name: str) -> None:
    """A segmentation sample's label map holds class indices below ``num_classes`` or ``ignore_index`` only.

    Args:
        sample: A data sample; one without ``gt_sem_seg`` passes.
        num_classes: Number of classes of the dataset.
        ignore_index: The label that is ignored (255 in mmseg).
        name: Where the dataset's config sits, for messages.
    """
    label = getattr(sample, 'gt_sem_seg', None)
    if label is None:
        return
    values = (label.data if 'data' in label else label.sem_seg).unique()  # mmseg's field; mmdet's (panoptic)
    bad = values[(values >= num_classes) & (values != ignore_index)]
    if len(bad):
        raise DataError(f'{name}: label map {sample.metainfo.get("seg_map_path")} holds class indices '
                         f'{bad.tolist()} (after reduce_zero_label, if set) but the config has {num_classes} classes: '
                         f'valid are 0..{num_classes - 1} and {ignore_index} (ignored)')


def build_checked_dataset(cfg: Mapping, name: str = 'dataset', variables: Optional[Mapping[str, str]] = None,
                          strict: bool = False) -> Any:
    """Check a dataset's config (logging its warnings), build it in the current scope, and check its samples.

    Args:
        cfg: The dataset's config.
        name: Where the config sits, for messages. Default: 'dataset'.
        variables: The environment variables the config reads (``config_variables``). Default: none.
        strict: Annotations mmdet would leave out are an error (``check_dataset_config``). Default: False.
    """
    for line in check_dataset_config(cfg, name, variables, strict):
        print_log(line, level=logging.WARNING)
    try:
        dataset = DATASETS.build(cfg)
    except ValueError as e:  # mmengine packs the samples with np.concatenate, which fails on none
        if 'need at least one array to concatenate' not in str(e):
            raise
        raise _empty(cfg, name) from e
    check_samples(dataset, cfg, name)
    return dataset
