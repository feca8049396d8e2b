"""Drawing a config's training data as the model sees it: ground truth after the training pipeline.

The config's ``default_scope`` picks the toolkit; its ``visualizer`` (mmdet's ``DetLocalVisualizer``: boxes, masks,
class names; mmseg's ``SegLocalVisualizer``: the label map in the dataset palette) draws, so the pictures look like
those of ``tools/test.py --show-dir``.
"""
import os
from pathlib import Path
from typing import List, Optional

import numpy as np
from mmengine.config import Config
from mmengine.registry import VISUALIZERS
from mmengine.utils import ProgressBar

from ..datasets.dataset_checks import build_checked_dataset, config_variables, strict_annotations
from ..utils.errors import ConfigError
from .cli import toolkit_scope


def browse_dataset(cfg: Config, output_dir: str, max_images: Optional[int] = None) -> List[str]:
    """Run the training pipeline over the first images of the training set and draw their ground truth.

    Args:
        cfg: A loaded config whose ``default_scope`` is 'mmdet' or 'mmseg'.
        output_dir: Folder for the drawings, one ``<index>_<image name>.png`` per sample (created if missing).
        max_images: Draw at most this many samples. Default: None (the whole training set).

    Returns:
        The files written, in dataset order.
    """
    if max_images is not None and max_images < 1:
        raise ConfigError(f'max_images={max_images} must be >= 1 (or None for the whole training set)')
    with toolkit_scope(cfg):
        dataset = build_checked_dataset(cfg.train_dataloader.dataset, 'train_dataloader.dataset',
                                        config_variables(cfg), strict_annotations(cfg))
        # drawings go to files directly; the config's vis backends (logging to a work dir) are not wanted here
        visualizer = VISUALIZERS.build(dict(cfg.visualizer, vis_backends=None))
    visualizer.dataset_meta = dataset.metainfo
    os.makedirs(output_dir, exist_ok=True)
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    written = []
    progress = ProgressBar(count)
    for index in range(count):
        item = dataset[index]
        # (C, H, W) BGR -> (H, W, C) RGB; contiguous, as OpenCV's drawing functions need
        image = np.ascontiguousarray(item['inputs'].permute(1, 2, 0).numpy()[..., ::-1])
        sample = item['data_samples'].numpy()
        instances = sample.get('gt_instances')
        if instances is not None and hasattr(instances.get('bboxes'), 'tensor'):
            # mmdet's pipeline packs boxes as box objects; its visualizer draws arrays
            instances.bboxes = instances.bboxes.tensor.numpy()
        name = Path(sample.img_path).stem
        out_file = os.path.join(output_dir, f'{index:05d}_{name}.png')
        visualizer.add_datasample(name, image, sample, draw_gt=True, draw_pred=False, out_file=out_file)
        written.append(out_file)
        progress.update()
    return written
