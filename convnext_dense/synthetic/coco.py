"""A seeded synthetic instance-segmentation dataset in the real COCO layout, for the COCO demo and the tests.

``write_coco_demo(root, ...)`` renders scenes with ``scenes.render_scene`` (shape classes, occlusion, varied sizes
and colours, textured backgrounds) and writes::

    root/annotations/instances_{train,val}2017.json
    root/{train,val}2017/000000000001.png ...

Each annotation holds the instance's visible mask as compressed RLE (exact, holes left by occluders included), its
bounding box ``[x, y, w, h]`` and pixel area, as in COCO. The same arguments give the same files.

Command line: ``python -m convnext_dense.synthetic.coco ROOT [--num-train N] [--num-val N] [--seed S] [--size PX]``.
"""
import json
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from .scenes import MIN_VISIBLE, SHAPES, Scene, demo_arguments, render_scene

SPLITS = ('train2017', 'val2017')


def _annotation(mask: np.ndarray, label: int, image_id: int, ann_id: int) -> dict:
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(id=ann_id, image_id=image_id, category_id=label + 1, iscrowd=0, area=int(mask.sum()),
                bbox=[x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1],
                segmentation=dict(size=[int(n) for n in rle['size']], counts=rle['counts'].decode('ascii')))


def split_scenes(seed: int, stream: int, num_images: int, size: int, max_instances: int, min_size: int,
                 max_size: int, min_visible: int = MIN_VISIBLE) -> Iterator[Scene]:
    """The scenes of one split (``stream`` is its index in ``SPLITS``): what every COCO-layout writer draws.
    ``min_visible`` changes which instances a scene lists, not the images."""
    rng = np.random.default_rng([seed, stream])
    for _ in range(num_images):
        yield render_scene(rng, size, size, max_instances=max_instances, min_size=min_size, max_size=max_size,
                           min_visible=min_visible)


def shape_sizes(size: int, min_size: Optional[int], max_size: Optional[int]) -> Tuple[int, int]:
    """The smallest and largest shape extents: ``size // 5`` and ``size // 2`` unless given; a ValueError if bad."""
    min_size = size // 5 if min_size is None else min_size
    max_size = size // 2 if max_size is None else max_size
    if not 0 < min_size <= max_size <= size:
        raise ValueError(f'shape sizes must satisfy 0 < min_size ({min_size}) <= max_size ({max_size}) '
                         f'<= size ({size})')
    return min_size, max_size


def make_split(out_dir: Path, scenes: Iterator[Scene], size: int) -> dict:
    """Write ``scenes`` into ``out_dir`` as PNGs; return the split's COCO annotation dict."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images: List[dict] = []
    annotations: List[dict] = []
    for image_id, scene in enumerate(scenes, start=1):
        file_name = f'{image_id:012d}.png'
        if not cv2.imwrite(str(out_dir / file_name), scene.image):
            raise OSError(f'could not write {out_dir / file_name}')
        images.append(dict(id=image_id, file_name=file_name, height=size, width=size))
        for mask, label in zip(scene.masks, scene.labels):
            annotations.append(_annotation(mask, int(label), image_id, len(annotations) + 1))
    return dict(images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(SHAPES)])


def write_coco_demo(root: str, num_train: int = 600, num_val: int = 100, seed: int = 0, size: int = 128,
                    max_instances: int = 4, min_size: Optional[int] = None,
                    max_size: Optional[int] = None) -> Dict[str, Tuple[int, int]]:
    """Write a synthetic COCO-layout instance-segmentation dataset under ``root``.

    Args:
        root: Output folder; ``annotations/`` and the image folders are created in it (existing files replaced).
        num_train: Images in ``train2017``. Default: 600.
        num_val: Images in ``val2017``. Default: 100.
        seed: Seed of the renderer; train and val use independent streams derived from it. Default: 0.
        size: Height and width of the square images in pixels. Default: 128.
        max_instances: Most shapes drawn per image (at least one). Default: 4.
        min_size: Smallest shape extent in pixels. Default: size // 5.
        max_size: Largest shape extent in pixels. Default: size // 2.

    Returns:
        ``{split: (number of images, number of annotated instances)}``.
    """
    if min(num_train, num_val) < 1 or max_instances < 1:
        raise ValueError(f'num_train={num_train}, num_val={num_val} and max_instances={max_instances} must be >= 1')
    min_size, max_size = shape_sizes(size, min_size, max_size)
    root_path = Path(root)
    (root_path / 'annotations').mkdir(parents=True, exist_ok=True)
    counts = {}
    for stream, (split, num_images) in enumerate(zip(SPLITS, (num_train, num_val))):
        scenes = split_scenes(seed, stream, num_images, size, max_instances, min_size, max_size)
        coco = make_split(root_path / split, scenes, size)
        (root_path / 'annotations' / f'instances_{split}.json').write_text(json.dumps(coco))
        counts[split] = (num_images, len(coco['annotations']))
    return counts


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = demo_arguments(__doc__.split('\n')[0], 'output folder, e.g. data/coco_demo', 100, argv)
    counts = write_coco_demo(args.root, args.num_train, args.num_val, args.seed, args.size)
    print(f'wrote {args.root}: ' + ', '.join(f'{split} {images} images / {instances} instances'
                                             for split, (images, instances) in counts.items()))


if __name__ == '__main__':
    main()
