"""A seeded synthetic semantic-segmentation dataset in the ADE20K (ADEChallengeData2016) layout.

The layout and label convention are those of ADE20K as read by mmseg's ``ADE20KDataset`` / ``BaseSegDataset``
with ``reduce_zero_label=True``::

    ROOT/images/{training,validation}/ADE_{train,val}_%08d.jpg     BGR images
    ROOT/annotations/{training,validation}/ADE_{train,val}_%08d.png  uint8 label maps: 0 = ignore, classes from 1

Scenes: one to four shapes (circle, square, triangle, star) of 1/4 to 1/2 of the image side, with random
rotation, colour and shading, overlapping by at most a tenth of their area (``scenes.render_scene``); large enough
that a from-scratch CPU demo learns their silhouettes.

Labelling: the textured background is a class of its own ("background", value 1), not ignore, because every
background pixel is known to be background and a model should be scored on it. Shapes are values 2.. in the order of
``CLASSES``. Every pixel is labelled, including the few visible pixels of an almost fully occluded shape, so the demo
never writes 0; the value is still reserved for "ignore" as in ADE20K, and ``reduce_zero_label`` maps it to 255.

    python -m convnext_dense.synthetic.ade data/ade_demo [--num-train 600] [--num-val 60] [--seed 0] [--size 128]
"""
import os
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np

from .scenes import SHAPES, demo_arguments, render_scene

# Class names after reduce_zero_label (label value - 1), for the dataset's metainfo.
CLASSES: Tuple[str, ...] = ('background',) + SHAPES
PALETTE: Tuple[Tuple[int, int, int], ...] = ((120, 120, 120), (230, 25, 75), (60, 180, 75), (255, 225, 25),
                                             (0, 130, 200))
SPLITS: Dict[str, str] = {'training': 'train', 'validation': 'val'}  # folder -> ADE file-name infix


def label_map(masks: np.ndarray, labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """An ADE20K-style (H, W) uint8 label map: 1 for background, ``2 + SHAPES index`` under each visible mask."""
    seg = np.ones((height, width), np.uint8)
    for mask, label in zip(masks, labels):
        seg[mask] = 2 + label
    return seg


def write_ade_demo(root: str, num_train: int = 600, num_val: int = 60, seed: int = 0, size: int = 128) -> None:
    """Write the dataset under ``root``; the same arguments always give the same files.

    Args:
        root: Dataset root (the folder that holds ``images/`` and ``annotations/``).
        num_train: Images in ``training``. Default: 600.
        num_val: Images in ``validation``. Default: 60.
        seed: Seed of the scenes; each split draws from its own stream, so ``num_train`` does not change the
            validation images. Default: 0.
        size: Height and width of the square images, in pixels (>= 32). Default: 128.
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train={num_train} and num_val={num_val} must both be >= 1')
    if size < 32:
        raise ValueError(f'size={size} is too small for the shapes; use size >= 32')
    for index, (folder, infix) in enumerate(SPLITS.items()):
        rng = np.random.default_rng([seed, index])
        os.makedirs(osp.join(root, 'images', folder), exist_ok=True)
        os.makedirs(osp.join(root, 'annotations', folder), exist_ok=True)
        for i in range(num_train if folder == 'training' else num_val):
            # min_visible=1 keeps every visible fragment, so no painted pixel goes unlabelled
            # max_overlap: shapes overlap by at most a tenth of their area, so every region keeps the silhouette
            # that names its class (a semantic label has no instance to fall back on)
            scene = render_scene(rng, size, size, max_instances=4, min_size=size // 4, max_size=size // 2,
                                 min_visible=1, max_overlap=0.1)
            name = f'ADE_{infix}_{i + 1:08d}'
            cv2.imwrite(osp.join(root, 'images', folder, f'{name}.jpg'), scene.image,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(osp.join(root, 'annotations', folder, f'{name}.png'),
                        label_map(scene.masks, scene.labels, size, size))


def main() -> None:
    args = demo_arguments(__doc__, 'dataset root to write (images/ and annotations/ go under it)', 60)
    write_ade_demo(args.root, args.num_train, args.num_val, args.seed, args.size)
    print(f'wrote {args.num_train} training and {args.num_val} validation images to {args.root}')


if __name__ == '__main__':
    main()
