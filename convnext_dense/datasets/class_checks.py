"""Does the model fit the dataset's classes? Every head that predicts classes, checked against the dataset before the
first iteration (``DatasetCheckHook``).

A COCO-format dataset of 3 classes trained with the recipes' 80-class heads runs a whole epoch and then fails in
mmdet's COCO metric (``IndexError`` in ``results2json``); Cascade Mask R-CNN alone has four heads whose class count
must change. ``HEADS`` is the table of what depends on the classes, one record per head family; a new family is one
more record. Keys are paths below ``model``; ``*`` stands for each element of a list (Cascade's three box heads,
mmseg's lists of auxiliary heads and losses) and for the one dict where the config has a dict.
"""
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Mapping, Sequence, Tuple

from ..utils.errors import ConfigError

Counts = Mapping[str, int]  # 'classes', 'things', 'stuff'

__all__ = ['ClassKey', 'HEADS', 'HeadFamily', 'check_classes', 'check_palette', 'class_counts', 'fit_classes',
           'mismatches']


@dataclass(frozen=True)
class ClassKey:
    """A model config key whose value follows the dataset's classes.

    Args:
        path: Where it sits below ``model``, dotted; ``*`` for each element of a list.
        needs: The value it needs, from the class counts.
        length: The key holds a list (class weights) whose length must be ``needs``; else it holds the number.
    """
    path: str
    needs: Callable[[Counts], int]
    length: bool = False


def _classes(counts: Counts) -> int:
    return counts['classes']


def _things(counts: Counts) -> int:
    return counts['things']


def _stuff(counts: Counts) -> int:
    return counts['stuff']


def _with_background(counts: Counts) -> int:
    return counts['classes'] + 1  # MaskFormer-style classifiers also score "no object"


@dataclass(frozen=True)
class HeadFamily:
    """The class-dependent keys of one family of heads."""
    name: str
    keys: Tuple[ClassKey, ...]


HEADS = (
    HeadFamily('two-stage detectors (Mask R-CNN, Cascade Mask R-CNN: three box heads and the mask head)', (
        ClassKey('roi_head.bbox_head.*.num_classes', _classes),
        ClassKey('roi_head.mask_head.*.num_classes', _classes))),
    HeadFamily('one-stage detectors (RTMDet, RetinaNet, ...)', (ClassKey('bbox_head.num_classes', _classes),)),
    HeadFamily("mmdet's MaskFormer / Mask2Former (instance and panoptic)", (
        ClassKey('panoptic_head.num_things_classes', _things),
        ClassKey('panoptic_head.num_stuff_classes', _stuff),
        ClassKey('panoptic_head.loss_cls.class_weight', _with_background, length=True),
        ClassKey('panoptic_fusion_head.num_things_classes', _things),
        ClassKey('panoptic_fusion_head.num_stuff_classes', _stuff))),
    HeadFamily('segmentors (UperNet decode and auxiliary heads, mmseg Mask2Former)', (
        ClassKey('decode_head.*.num_classes', _classes),
        ClassKey('decode_head.*.loss_cls.class_weight', _with_background, length=True),
        ClassKey('decode_head.*.loss_decode.*.class_weight', _classes, length=True),
        ClassKey('auxiliary_head.*.num_classes', _classes),
        ClassKey('auxiliary_head.*.loss_decode.*.class_weight', _classes, length=True))),
)


def _find(node: Any, parts: Sequence[str], prefix: str) -> Iterator[Tuple[str, Any, Any]]:
    """(dotted key, container, key in it) of every match of ``parts`` below ``node``; list elements are named by
    their index."""
    head, rest = parts[0], parts[1:]
    if head == '*':
        if isinstance(node, (list, tuple)):
            for index, item in enumerate(node):
                yield from _find(item, rest, f'{prefix}.{index}')
        elif isinstance(node, Mapping):
            yield from _find(node, rest, prefix)
    elif isinstance(node, Mapping) and head in node:
        if rest:
            yield from _find(node[head], rest, f'{prefix}.{head}')
        else:
            yield f'{prefix}.{head}', node, head


def _needed(key: ClassKey, value: Any, counts: Counts) -> Any:
    """What ``value`` of ``key`` must be for ``counts``, or None where it fits (or is not a count or a list)."""
    need = key.needs(counts)
    if key.length and isinstance(value, (list, tuple)) and len(value) != need:
        # keep the weights' pattern: the first for each class, the last for "no object" where there is one
        return [value[0]] * (need - 1) + [value[-1]] if key.needs is _with_background else [value[0]] * need
    if not key.length and isinstance(value, int) and value != need:
        return need
    return None


def _class_keys(model: Mapping, prefix: str) -> Iterator[Tuple[str, Any, Any, ClassKey]]:
    if 'module' in model and str(model.get('type', '')).endswith('TTAModel'):  # tools/test.py --tta wraps the model
        yield from _class_keys(model['module'], f'{prefix}.module')
        return
    for family in HEADS:
        for key in family.keys:
            for name, container, item in _find(model, key.path.split('.'), prefix):
                yield name, container, item, key


def class_counts(metainfo: Mapping) -> Counts:
    """The counts the heads follow: all classes, and of them the things and the stuff (panoptic datasets name both;
    an instance dataset's classes are all things)."""
    classes = tuple(metainfo.get('classes') or ())
    things = metainfo.get('thing_classes')
    return dict(classes=len(classes), things=len(classes if things is None else things),
                stuff=len(metainfo.get('stuff_classes') or ()))


def mismatches(model: Mapping, counts: Counts, prefix: str = 'model') -> List[str]:
    """``KEY=VALUE`` (the value it needs, written as ``--cfg-options`` takes it) for each class-dependent key of a
    model config that does not fit ``counts``, with what it holds now."""
    found = []
    for name, container, item, key in _class_keys(model, prefix):
        value = container[item]
        need = _needed(key, value, counts)
        if need is not None:
            now = f'{len(value)} weights' if key.length else value
            found.append(f'{name}={"[" + ",".join(map(str, need)) + "]" if key.length else need} (now {now})')
    return found


def fit_classes(model: Mapping, metainfo: Mapping) -> Mapping:
    """``model`` (a config) with every class-dependent key of ``HEADS`` set for the classes of ``metainfo``, in place;
    what the own-data templates write, so that the class names are given once.

    Args:
        model: The model's config, e.g. ``_base_.model``.
        metainfo: ``dict(classes=...)``; panoptic data also ``thing_classes`` and ``stuff_classes``.
    """
    counts = class_counts(metainfo)
    for _, container, item, key in list(_class_keys(model, 'model')):
        need = _needed(key, container[item], counts)
        if need is not None:
            container[item] = need
    return model


def check_classes(model: Mapping, metainfo: Mapping, name: str) -> None:
    """Raise a ``ConfigError`` naming every class-dependent key of ``model`` (a config) that does not fit the classes
    of a dataset (its ``metainfo``), and the value each needs.

    Args:
        model: The model's config.
        metainfo: The built dataset's ``metainfo`` ('classes'; panoptic: 'thing_classes', 'stuff_classes').
        name: Where the dataset's config sits, for the message.
    """
    classes = tuple(metainfo.get('classes') or ())
    if not classes:
        return
    counts = class_counts(metainfo)
    bad = mismatches(model, counts)
    if bad:
        shown = ', '.join(map(repr, classes[:8])) + (', ...' if len(classes) > 8 else '')
        raise ConfigError(f'{name} has {len(classes)} classes ({shown}) but the model is set up for another count: '
                          f'set {"; ".join(bad)} (e.g. with --cfg-options, or once in your config: see the README, '
                          '"Train on your own data")')


def check_palette(metainfo: Mapping, name: str) -> None:
    """A dataset config's ``metainfo`` that names classes and a palette gives one colour per class.

    Args:
        metainfo: The ``metainfo`` of a dataset config.
        name: Where the dataset's config sits, for the message.
    """
    classes, palette = metainfo.get('classes'), metainfo.get('palette')
    if classes and palette is not None and len(palette) != len(classes):
        raise ConfigError(f'{name}.metainfo: palette has {len(palette)} colours for {len(classes)} classes; give '
                          'one (R, G, B) per class, in the order of the classes')
