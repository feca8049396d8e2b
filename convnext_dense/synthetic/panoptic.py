"""A seeded synthetic COCO panoptic dataset from the same scenes as the instance one (``coco.py``).

``write_coco_panoptic_demo(root, ...)`` writes what ``coco.write_coco_demo`` writes with the same arguments (the
images and ``instances_*.json``: the panoptic recipes evaluate instances too), and, in the COCO panoptic format::

    root/annotations/panoptic_{train,val}2017.json
    root/annotations/panoptic_{train,val}2017/000000000001.png   RGB-encoded segment ids: id = R + 256 G + 256^2 B

Segments: each annotated shape is a *thing* segment (its category and mask as in ``instances_*.json``); the textured
background is one *stuff* segment, category ``background``; the pixels of shape fragments too small to annotate are
0 (VOID: unlabelled, not scored), as in COCO.

Command line: ``python -m convnext_dense.synthetic.panoptic ROOT [--num-train N] [--num-val N] [--seed S]
[--size PX]``.
"""
import json
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from .coco import SPLITS, shape_sizes, split_scenes, write_coco_demo
from .scenes import MIN_VISIBLE, SHAPES, Scene, demo_arguments, id2rgb

STUFF = ('background',)
CLASSES = SHAPES + STUFF  # things first, as mmdet's CocoPanopticDataset orders them
CATEGORIES = [dict(id=i + 1, name=name, supercategory='shape' if name in SHAPES else 'stuff',
                   isthing=int(name in SHAPES)) for i, name in enumerate(CLASSES)]


def panoptic_annotation(scene: Scene, image_id: int, file_name: str) -> Tuple[dict, np.ndarray]:
    """(the record of ``panoptic_*.json`` for one image, its (H, W) segment-id map).

    ``scene`` lists every visible fragment (rendered with ``min_visible=1``); those below ``MIN_VISIBLE`` pixels,
    which the instance annotations leave out, stay VOID.
    """
    ids = np.zeros(scene.image.shape[:2], np.int64)
    segments = []
    background = ~scene.masks.any(axis=0) if len(scene.masks) else np.ones(ids.shape, bool)
    annotated = [(mask, int(label)) for mask, label in zip(scene.masks, scene.labels) if mask.sum() >= MIN_VISIBLE]
    for mask, label in annotated + [(background, len(SHAPES))]:
        if not mask.any():
            continue
        ids[mask] = segment_id = len(segments) + 1
        ys, xs = np.nonzero(mask)
        segments.append(dict(id=segment_id, category_id=label + 1, iscrowd=0, area=int(mask.sum()),
                             bbox=[int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                                   int(ys.max() - ys.min() + 1)]))
    return dict(image_id=image_id, file_name=file_name, segments_info=segments), ids


def write_coco_panoptic_demo(root: str, num_train: int = 600, num_val: int = 100, seed: int = 0, size: int = 128,
                             max_instances: int = 4, min_size: Optional[int] = None,
                             max_size: Optional[int] = None) -> Dict[str, Tuple[int, int]]:
    """Write the instance dataset of ``coco.write_coco_demo`` (same arguments, same files) plus its panoptic
    annotations under ``root``.

    Returns:
        ``{split: (number of images, number of segments)}``.
    """
    write_coco_demo(root, num_train, num_val, seed, size, max_instances, min_size, max_size)
    min_size, max_size = shape_sizes(size, min_size, max_size)
    annotations_dir = Path(root) / 'annotations'
    counts = {}
    for stream, (split, num_images) in enumerate(zip(SPLITS, (num_train, num_val))):
        instances = json.loads((annotations_dir / f'instances_{split}.json').read_text())
        png_dir = annotations_dir / f'panoptic_{split}'
        png_dir.mkdir(parents=True, exist_ok=True)
        records = []
        scenes = split_scenes(seed, stream, num_images, size, max_instances, min_size, max_size, min_visible=1)
        for image, scene in zip(instances['images'], scenes):
            record, ids = panoptic_annotation(scene, image['id'], image['file_name'])
            if not cv2.imwrite(str(png_dir / image['file_name']), id2rgb(ids)[:, :, ::-1]):  # cv2 writes BGR
                raise OSError(f'could not write {png_dir / image["file_name"]}')
            records.append(record)
        panoptic = dict(images=instances['images'], annotations=records, categories=CATEGORIES)
        (annotations_dir / f'panoptic_{split}.json').write_text(json.dumps(panoptic))
        counts[split] = (num_images, sum(len(r['segments_info']) for r in records))
    return counts


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = demo_arguments(__doc__.split('\n')[0], 'output folder, e.g. data/coco_panoptic_demo', 100, argv)
    counts = write_coco_panoptic_demo(args.root, args.num_train, args.num_val, args.seed, args.size)
    print(f'wrote {args.root}: ' + ', '.join(f'{split} {images} images / {segments} segments'
                                             for split, (images, segments) in counts.items()))


if __name__ == '__main__':
    main()
