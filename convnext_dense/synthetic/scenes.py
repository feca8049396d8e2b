"""Seeded synthetic scenes for the embedded demos: coloured shapes with instance masks over textured backgrounds.

The same renderer feeds the COCO-layout (instance segmentation) and ADE20K-layout (semantic segmentation) demo
datasets, so both exercise the real data pipelines without any download.
"""
import argparse
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

SHAPES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'star')
MIN_VISIBLE = 20  # visible pixels an instance needs to be annotated


@dataclass
class Scene:
    """One rendered image and its instances, front-most last.

    Attributes:
        image: (H, W, 3) uint8 BGR image.
        masks: (N, H, W) bool visible masks (occluded parts removed); an instance hidden completely is dropped.
        labels: (N,) int64 indices into ``SHAPES``.
    """
    image: np.ndarray
    masks: np.ndarray
    labels: np.ndarray


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random colour field plus stripes and noise, so the background is never a flat colour."""
    low = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.float32)
    field = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 24)
    stripes = 18 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    noise = rng.normal(0, 8, size=(height, width, 3))
    return np.clip(field + stripes[..., None] + noise, 0, 255).astype(np.uint8)


def _shape_mask(rng: np.random.Generator, shape: str, height: int, width: int, min_size: int,
                max_size: int) -> np.ndarray:
    size = int(rng.integers(min_size, max_size + 1))
    cx, cy = (int(rng.integers(size // 2, max(size // 2 + 1, n - size // 2))) for n in (width, height))
    angle = rng.uniform(0, 2 * np.pi)
    mask = np.zeros((height, width), np.uint8)
    if shape == 'circle':
        cv2.circle(mask, (cx, cy), size // 2, 1, thickness=-1)
        return mask.astype(bool)
    if shape == 'square':
        corners, radii = 4, [size / np.sqrt(2)] * 4
    elif shape == 'triangle':
        corners, radii = 3, [size / np.sqrt(3)] * 3
    else:  # star: ten points alternating between two radii
        corners, radii = 10, [size / 2 if k % 2 == 0 else size / 5 for k in range(10)]
    theta = angle + np.arange(corners) * 2 * np.pi / corners
    points = np.stack([cx + np.array(radii) * np.cos(theta), cy + np.array(radii) * np.sin(theta)], axis=1)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def render_scene(rng: np.random.Generator, height: int, width: int, max_instances: int = 5,
                 min_size: int = 12, max_size: int = 48, min_visible: int = MIN_VISIBLE, max_overlap: float = 1.0,
                 tries: int = 20) -> Scene:
    """Draw 1..max_instances shapes of random class, size, rotation and colour over a textured background.

    Later shapes occlude earlier ones; each instance keeps only its visible pixels, and one with fewer than
    ``min_visible`` visible pixels is dropped from the annotations (its pixels stay painted, as in real data where
    tiny fragments go unlabelled). A shape that would cover more than ``max_overlap`` of its own area of the
    shapes already drawn is placed again, up to ``tries`` times, then left out; the default 1.0 never re-places.
    """
    image = _texture(rng, height, width)
    masks: List[np.ndarray] = []
    labels: List[int] = []
    drawn = np.zeros((height, width), bool)
    for _ in range(int(rng.integers(1, max_instances + 1))):
        label = int(rng.integers(len(SHAPES)))
        for _ in range(tries):
            mask = _shape_mask(rng, SHAPES[label], height, width, min_size, max_size)
            if (mask & drawn).sum() <= max_overlap * mask.sum():
                break
        else:
            continue
        drawn |= mask
        colour = rng.integers(0, 256, size=3)
        shade = rng.uniform(0.75, 1.0, size=(height, width, 1))  # mild shading keeps colour from being the cue
        image[mask] = np.clip(colour * shade[mask], 0, 255).astype(np.uint8)
        for earlier in masks:
            earlier &= ~mask
        masks.append(mask)
        labels.append(label)
    keep = [i for i, m in enumerate(masks) if m.sum() >= min_visible]
    return Scene(image=image,
                 masks=np.stack([masks[i] for i in keep]) if keep else np.zeros((0, height, width), bool),
                 labels=np.array([labels[i] for i in keep], dtype=np.int64))


def id2rgb(ids: np.ndarray) -> np.ndarray:
    """(H, W) segment ids as the (H, W, 3) uint8 RGB image of the COCO panoptic format."""
    return np.stack([ids % 256, ids // 256 % 256, ids // 256**2 % 256], axis=-1).astype(np.uint8)


def demo_arguments(description: str, root_help: str, num_val: int,
                   argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The demo writers' command line: ``ROOT [--num-train N] [--num-val N] [--seed S] [--size PX]``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', help=root_help)
    parser.add_argument('--num-train', type=int, default=600, help='training images (default: 600)')
    parser.add_argument('--num-val', type=int, default=num_val, help=f'validation images (default: {num_val})')
    parser.add_argument('--seed', type=int, default=0, help='scene seed (default: 0)')
    parser.add_argument('--size', type=int, default=128, help='image height and width in pixels (default: 128)')
    return parser.parse_args(argv)
