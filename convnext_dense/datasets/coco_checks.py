"""A COCO-format annotation file against the dataset config that reads it, before mmdet 3.3 builds the dataset.

mmdet matches the config's ``classes`` with the ``name`` of the file's categories (``CocoDataset.load_data_list``:
``get_cat_ids(cat_names=classes)``) and says nothing about a name it does not find: the heads are sized for a class
the data lacks, a whole epoch trains, and the first validation fails in ``CocoMetric.results2json``; a missing name
before others shifts every later label onto the wrong name. No name found at all leaves no sample, and mmengine
fails with ``need at least one array to concatenate``. Both are one line here, naming the file's categories.

mmdet also leaves out, silently, each annotation whose box (clipped to its image) is empty, or whose ``area`` is
<= 0, or whose width or height is < 1 (``CocoDataset.parse_data_info``), and marks ignored each crowd annotation
(``iscrowd``) and, where the pipeline loads masks, each whose polygons are all invalid (no polygon of an even
number >= 6 of coordinates, i.e. 3 points: ``LoadAnnotations._process_masks``). ``annotation_warnings`` counts them
in one line with the first ids; ``strict=True`` (the config's ``strict_annotations``) makes the left-out and the
invalid-polygon ones an error. Crowd annotations are COCO's way of marking regions to ignore, so they are counted,
never an error.

What would fail in mmdet with a bare ``KeyError`` is an error here, naming the file and the annotation: an
annotation without the ``bbox`` or ``area`` that ``parse_data_info`` reads; where the pipeline loads masks, a kept
instance annotation without a segmentation (``LoadAnnotations._process_masks`` reads the ``mask`` that
``parse_data_info`` sets from a non-empty one only); and in a panoptic file, a segment of a category that is no
class (``CocoPanopticDataset`` has no filter of categories: its classes must list all of the file's).
"""
import json
from collections import Counter
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from mmengine.registry import DATASETS

from ..utils.errors import ConfigError, DataError

SHOWN = 5  # ids or names shown in one message
DROPPED = 'box empty or outside its image after clipping, under 1 px wide or high, or area <= 0'
CROWD = 'crowd (iscrowd=1)'
POLYGONS = 'with masks but without a polygon of 3 or more points'
STRICT_HINT = 'strict_annotations=True in the config (or --cfg-options) makes this an error'


def _shown(items: Sequence[Any]) -> str:
    return ', '.join(map(str, items[:SHOWN])) + (', ...' if len(items) > SHOWN else '')


def _names(names: Sequence[str], limit: int = 8) -> str:
    """``names`` quoted, the first ``limit`` of them where there are more (then with their count)."""
    shown = ', '.join(map(repr, names[:limit]))
    return f'{shown}, ... ({len(names)} in all)' if len(names) > limit else shown


def read_coco(ann_file: str, name: str) -> Optional[dict]:
    """The parsed file, or None where it is not COCO (no ``categories``: the dataset class reads it)."""
    try:
        with open(ann_file) as f:
            coco = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f'{name}.ann_file: {ann_file} is not valid JSON: {e.msg} at line {e.lineno} column '
                        f'{e.colno}') from e
    return coco if isinstance(coco, dict) and 'categories' in coco else None


def check_category_ids(coco: Mapping, ann_file: str, name: str) -> None:
    """Each annotation's (or panoptic segment's) category_id is among the file's categories: mmdet would drop the
    others silently."""
    categories = {c['id'] for c in coco['categories']}
    for ann in coco.get('annotations', []):
        for segment in ann.get('segments_info', [ann]):  # a panoptic record lists its image's segments
            if segment.get('category_id') not in categories:
                what = 'segment' if 'segments_info' in ann else 'annotation'
                raise DataError(f"{name}.ann_file: {ann_file}: {what} {segment.get('id')} (image "
                                f"{ann.get('image_id')}) has category_id {segment.get('category_id')}, not one of "
                                f'the ids in "categories": {sorted(categories)}')


def config_classes(cfg: Mapping) -> Tuple[Tuple[str, ...], str]:
    """The classes the dataset of ``cfg`` will have, and where they come from: the config's ``metainfo``, else the
    dataset class's ``METAINFO`` (looked up in the current default scope, as the build will)."""
    classes = (cfg.get('metainfo') or {}).get('classes')
    if classes:
        return tuple(classes), "the config's classes"
    kind = cfg.get('type')
    with DATASETS.switch_scope_and_registry(None) as registry:
        cls = registry.get(kind) if isinstance(kind, str) else kind
    classes = tuple((getattr(cls, 'METAINFO', None) or {}).get('classes') or ())
    return classes, f"the classes of {getattr(cls, '__name__', kind)} (the config's metainfo names none)"


def check_class_names(categories: Sequence[Mapping], classes: Sequence[str], source: str, ann_file: str,
                      name: str) -> None:
    """Every class is the name of a category of the file (a subset of the categories, as mmdet allows)."""
    in_file = tuple(c['name'] for c in categories)
    missing = [c for c in classes if c not in in_file]
    if not missing:
        return
    key, valid = f'{name}.metainfo.classes', f'its categories are ({_names(in_file, 20)})'
    if len(missing) == len(classes):
        raise ConfigError(f'{key}: none of {source}, ({_names(classes)}), is a category of {ann_file}; {valid}: '
                          'name the classes after them (mmdet matches classes with category names)')
    one = len(missing) == 1
    raise ConfigError(f"{key}: {_names(missing)} {'is not a category' if one else 'are not categories'} of "
                      f'{ann_file}, so the heads would have a class without data; {valid}: remove or rename '
                      f'{"it" if one else "them"}')


def check_class_order(categories: Sequence[Mapping], classes: Sequence[str], ann_file: str, name: str) -> None:
    """mmdet numbers the labels in the file's order of ``categories`` (pycocotools' ``getCatIds``), not in the order
    of the config's ``classes``, which name them: other orders would silently name every label wrongly."""
    in_file = tuple(c['name'] for c in categories if c['name'] in classes)
    wanted = tuple(c for c in classes if c in in_file)
    if in_file != wanted:
        raise ConfigError(f'{name}.metainfo.classes: {ann_file} lists these categories in another order; mmdet '
                          f'numbers the labels in the file\'s order, so list the classes as {in_file!r}')


def _read_by_mmdet(coco: Mapping) -> Iterator[Tuple[Mapping, Mapping, bool]]:
    """(annotation, its image, whether it is a panoptic segment) of each annotation mmdet 3.3 reads: those of the
    listed images (``CocoDataset.load_data_list``), less the instance annotations marked ``ignore``, which
    ``CocoDataset.parse_data_info`` skips first (``CocoPanopticDataset.parse_data_info`` reads every segment)."""
    images = {image['id']: image for image in coco.get('images', [])}
    for record in coco.get('annotations', []):
        image = images.get(record.get('image_id'))
        if image is None:
            continue
        panoptic = 'segments_info' in record  # a panoptic record lists its image's segments
        for ann in record['segments_info'] if panoptic else [record]:
            if panoptic or not ann.get('ignore', False):
                yield ann, image, panoptic


def _clipped_empty(bbox: Sequence[float], image: Mapping) -> bool:
    x, y, w, h = bbox
    inter_w = max(0, min(x + w, image.get('width', 0)) - max(x, 0))
    inter_h = max(0, min(y + h, image.get('height', 0)) - max(y, 0))
    return inter_w * inter_h == 0


def _left_out(ann: Mapping, image: Mapping, panoptic: bool) -> bool:
    """mmdet 3.3 leaves the annotation out (``CocoDataset.parse_data_info``; a panoptic segment:
    ``CocoPanopticDataset.parse_data_info``, which does not clip)."""
    _, _, w, h = ann['bbox']
    return (not panoptic and _clipped_empty(ann['bbox'], image)) or ann['area'] <= 0 or w < 1 or h < 1


def check_annotation_keys(coco: Mapping, ann_file: str, name: str) -> None:
    """Each annotation mmdet reads has the 'bbox' and 'area' it reads without a default (a ``KeyError`` while the
    dataset is built): the box of every one, of any category, and the area of each whose box is not empty after
    clipping to its image (a panoptic segment: both)."""
    for ann, image, panoptic in _read_by_mmdet(coco):
        needed = ('bbox',) if 'bbox' in ann and not panoptic and _clipped_empty(ann['bbox'], image) else \
            ('bbox', 'area')
        missing = [key for key in needed if key not in ann]
        if missing:
            what = 'segment' if panoptic else 'annotation'
            raise DataError(f"{name}.ann_file: {ann_file}: {what} {ann.get('id')} (image {image['id']}) has no "
                            f"{' and no '.join(map(repr, missing))}; mmdet reads the 'bbox' ([x, y, width, height]) "
                            f"and 'area' (in pixels) of every {what}: add {'them' if len(missing) > 1 else 'it'}")


def _no_valid_polygon(ann: Mapping) -> bool:
    """mmdet 3.3's ``LoadAnnotations._process_masks`` marks the instance ignored: polygons, none valid."""
    segmentation = ann.get('segmentation')
    return isinstance(segmentation, list) and bool(segmentation) and \
        not any(len(polygon) % 2 == 0 and len(polygon) >= 6 for polygon in segmentation)


def loads_masks(cfg: Mapping) -> bool:
    """The dataset's pipeline loads instance masks (mmdet's ``LoadAnnotations(with_mask=True)``)."""
    return any(isinstance(t, Mapping) and str(t.get('type', '')).endswith('LoadAnnotations') and t.get('with_mask')
               for t in cfg.get('pipeline') or ())


def annotation_findings(coco: Mapping, classes: Sequence[str], masks: bool) -> Tuple[Dict[str, List[int]], Counter]:
    """The ids of the annotations of ``classes`` that mmdet leaves out or marks ignored, by reason (``DROPPED``,
    ``CROWD``, ``POLYGONS``), and how many of each class it keeps (ignored ones included); of a file that
    ``check_annotation_keys`` passed."""
    names = {c['id']: c['name'] for c in coco['categories'] if c['name'] in classes}
    found: Dict[str, List[int]] = {DROPPED: [], CROWD: [], POLYGONS: []}
    kept: Counter = Counter()
    for ann, image, panoptic in _read_by_mmdet(coco):
        if ann.get('category_id') not in names:
            continue  # other classes are left out by design
        if _left_out(ann, image, panoptic):
            found[DROPPED].append(ann.get('id'))
            continue
        kept[names[ann['category_id']]] += 1
        if ann.get('iscrowd', False):
            found[CROWD].append(ann.get('id'))
        elif masks and not panoptic and _no_valid_polygon(ann):
            found[POLYGONS].append(ann.get('id'))
    return found, kept


def check_panoptic_categories(coco: Mapping, classes: Sequence[str], ann_file: str, name: str) -> None:
    """Every category of a panoptic file's segments is a class: ``CocoPanopticDataset.parse_data_info`` has no filter
    of categories and looks up the label of each segment it does not leave out (a ``KeyError`` while the dataset is
    built)."""
    used = {ann['category_id'] for ann, image, panoptic in _read_by_mmdet(coco)
            if panoptic and not _left_out(ann, image, panoptic)}
    missing = [c['name'] for c in coco['categories'] if c['id'] in used and c['name'] not in classes]
    if missing:
        one = len(missing) == 1
        raise ConfigError(f"{name}.metainfo.classes: {_names(missing)} {'is a category' if one else 'are categories'} "
                          f'of the segments of the panoptic file {ann_file} but not among the classes; a panoptic '
                          'dataset must list every category of its file (things and stuff: mmdet has no filter of '
                          f'categories for panoptic segments): add {"it" if one else "them"}')


def check_masks(coco: Mapping, classes: Sequence[str], ann_file: str, name: str) -> None:
    """Each instance annotation of ``classes`` that mmdet keeps has a segmentation, for a pipeline that loads masks:
    ``CocoDataset.parse_data_info`` sets an instance's mask from a non-empty one only, and
    ``LoadAnnotations._process_masks`` reads the mask of every instance, crowd ones included (``KeyError: 'mask'`` at
    the first batch)."""
    ids = {c['id'] for c in coco['categories'] if c['name'] in classes}
    for ann, image, panoptic in _read_by_mmdet(coco):
        if not panoptic and ann.get('category_id') in ids and not ann.get('segmentation') and \
                not _left_out(ann, image, panoptic):
            shown = f"'segmentation': {ann['segmentation']!r}" if 'segmentation' in ann else "no 'segmentation'"
            raise DataError(f"{name}.ann_file: {ann_file}: annotation {ann.get('id')} (image {image['id']}) has "
                            f'{shown}, and the pipeline loads masks (LoadAnnotations with_mask=True); valid: a list '
                            "of polygons ([[x1, y1, x2, y2, x3, y3, ...], ...]) or an RLE ({'size': [height, "
                            "width], 'counts': ...}): add it, or remove the annotation")


def annotation_warnings(coco: Mapping, classes: Sequence[str], masks: bool, ann_file: str, name: str,
                        strict: bool = False) -> List[str]:
    """One line for the classes with no annotation mmdet keeps in this file (normal in a small validation split),
    one for the annotations it leaves out or marks ignored; with ``strict``, left-out and invalid-polygon
    annotations raise a ``DataError`` instead."""
    found, kept = annotation_findings(coco, classes, masks)
    said = []
    # an image-info file (COCO test-dev) has no annotations to count
    empty = [c for c in classes if not kept[c]] if 'annotations' in coco else []
    if empty:
        said.append(f'{name}: {ann_file} has no annotation mmdet keeps of {len(empty)} of the {len(classes)} '
                    f'classes: {_names(empty)}')
    total = sum(kept.values()) + len(found[DROPPED])
    parts = [f'leaves out {len(found[DROPPED])} ({DROPPED}: ids {_shown(found[DROPPED])})'] if found[DROPPED] else []
    ignored = {reason: ids for reason, ids in found.items() if ids and reason != DROPPED}
    if ignored:
        kinds = '; '.join(f'{len(ids)} {reason}: ids {_shown(ids)}' for reason, ids in ignored.items())
        parts.append(f'marks {sum(map(len, ignored.values()))} ignored ({kinds})')
    if parts:
        line = f'{name}: {ann_file}: of {total} annotations of the classes, mmdet {" and ".join(parts)}'
        if strict and (found[DROPPED] or found[POLYGONS]):
            raise DataError(f'{line}; fix or remove them (strict_annotations=True)')
        said.append(line + ('' if strict else f'; {STRICT_HINT}'))
    return said


def check_coco(ann_file: str, cfg: Mapping, name: str, strict: bool = False) -> List[str]:
    """Check a COCO-format annotation file against the config of its dataset; the warnings to log.

    Args:
        ann_file: The file's path.
        cfg: The dataset's config (its ``metainfo.classes``, ``type`` and ``pipeline``).
        name: Where the config sits, for messages, e.g. 'train_dataloader.dataset'.
        strict: Annotations mmdet leaves out, or ignores for their polygons, are an error. Default: False (warned).
    """
    coco = read_coco(ann_file, name)
    if coco is None:
        return []
    check_category_ids(coco, ann_file, name)
    check_annotation_keys(coco, ann_file, name)
    classes, source = config_classes(cfg)
    if not classes:
        return []
    check_class_names(coco['categories'], classes, source, ann_file, name)
    check_class_order(coco['categories'], classes, ann_file, name)
    check_panoptic_categories(coco, classes, ann_file, name)
    masks = loads_masks(cfg)
    if masks:
        check_masks(coco, classes, ann_file, name)
    return annotation_warnings(coco, classes, masks, ann_file, name, strict)
