"""Inference on images, folders and videos with mmdet's ``DetInferencer`` or mmseg's ``MMSegInferencer`` (the
config's ``default_scope`` picks), writing drawn results and machine-readable predictions, each file atomically.

What the inferencers do is kept (model building, checkpoint reading, test pipeline, forward, drawing); two things are
added where they fall short for these configs: a checkpoint that does not fit the config is refused (the check of
``CheckpointFitHook``), and a checkpoint without class names takes them from the config's test dataset instead of
mmdet's silent fallback to the 80 COCO names (mmseg's: the 19 Cityscapes names).

Outputs under ``out_dir`` for an input named ``NAME.EXT`` (its path inside a folder input, or its file name):

* ``vis/NAME.EXT``: the image with the predictions drawn (boxes, masks and class names; or the class colours
  blended in, with their names); for a video ``vis/NAME.mp4``.
* ``preds/NAME.json`` (detection): ``{"image", "height", "width", "classes", "labels", "scores", "bboxes",
  "masks"}``, one entry per detection with a score of at least ``score_thr``, best first: ``labels`` index
  ``classes``, ``bboxes`` are ``[x1, y1, x2, y2]`` in pixels of the input image, ``masks`` are COCO RLE
  (``{"size": [height, width], "counts": str}``, ``pycocotools.mask.decode`` reads them).
* ``preds/NAME.png`` (segmentation): one channel, the class index of each pixel into the config's class list
  (8-bit; 16-bit above 255 classes). With ``reduce_zero_label`` (ADE20K) index 0 is the first listed class, which
  is value 1 in the dataset's annotation files (0 there is "other", not predicted). Every pixel gets a class: the
  ignore value 255 of the annotations never appears.
* panoptic: also ``preds/NAME.png``, RGB-encoded segment ids, and ``segments_info`` in the JSON (``records``).
* For a video, ``preds/NAME/000000.json`` (or ``.png``) per frame.

Each file is written under a ``.partial`` name and renamed once complete, so a run stopped at any moment leaves
complete files under their final names (and at most the one ``.partial`` file it was writing).
"""
import json
import os
import os.path as osp
import time
import warnings
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from mmengine.infer import BaseInferencer
from mmengine.registry import DATASETS
from mmengine.utils import ProgressBar
from torch import nn

from ..checkpoint.fit import check_checkpoint_fits, name_heads_as_model
from ..utils.atomic import PARTIAL_SUFFIX, commit, write_atomic
from ..utils.errors import ConfigError, DataError, MissingFileError
from .cli import load_config, toolkit_scope
from .records import detection_record, has_segments, label_png, panoptic_segments

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm', '.mpg', '.mpeg', '.m4v')


@dataclass(frozen=True)
class Source:
    """One input: an image or a video file, and its output name (the path inside its folder input, or its name)."""
    path: str
    name: str
    video: bool


def collect_inputs(paths: Sequence[str]) -> List[Source]:
    """Images and videos of ``paths`` (files, or folders searched recursively by extension), in order.

    Raises:
        ValueError: one line per bad input (a missing path, a file that is neither an image nor a video by its
            extension, a folder without images or videos), or two inputs with the same output name.
    """
    sources, problems = [], []
    known = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
    for path in paths:
        if osp.isdir(path):
            found = sorted(osp.relpath(osp.join(root, f), path) for root, _, files in os.walk(path)
                           for f in files if f.lower().endswith(known))
            if not found:
                problems.append(f'{path}: folder without images or videos (searched recursively for '
                                f'{", ".join(known)})')
            sources += [Source(osp.join(path, rel), rel, rel.lower().endswith(VIDEO_EXTENSIONS)) for rel in found]
        elif not osp.exists(path):
            problems.append(f'{path}: no such file or folder')
        elif not path.lower().endswith(known):
            problems.append(f'{path}: not an image ({", ".join(IMAGE_EXTENSIONS)}) or a video '
                            f'({", ".join(VIDEO_EXTENSIONS)})')
        else:
            sources.append(Source(path, osp.basename(path), path.lower().endswith(VIDEO_EXTENSIONS)))
    seen = {}
    for source in sources:
        stem = osp.splitext(source.name)[0]
        if stem in seen:
            problems.append(f'{source.path}: its outputs would overwrite those of {seen[stem]} (same name '
                            f'{stem}); run them separately or with separate --out-dir')
        seen[stem] = source.path
    if problems:
        raise ConfigError('\n'.join(problems))
    return sources


def check_device(device: str) -> str:
    """``device`` if torch can allocate on it, else a ``ValueError`` naming it and what this machine offers."""
    offered = ['cpu'] + [f'cuda:{i}' for i in range(torch.cuda.device_count())]
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as error:
        raise ConfigError(f'device {device!r} is not usable here ({str(error).splitlines()[0]}); this machine '
                          f'offers {", ".join(offered)}') from None
    return device


class FittingWeights:
    """Mixed into an mm inferencer: refuse a checkpoint that does not fit the config, and take the class names and
    palette from the checkpoint's metadata, else from the config's test dataset (never from another dataset)."""

    def _load_weights_to_model(self, model: nn.Module, checkpoint: Optional[dict], cfg) -> None:
        if checkpoint is not None:
            name_heads_as_model(model, checkpoint)
            check_checkpoint_fits(model, checkpoint, self.weights_path)
        meta = (checkpoint or {}).get('meta', {})
        with warnings.catch_warnings():  # their fallbacks to COCO / Cityscapes names, replaced below
            warnings.filterwarnings('ignore', message='(dataset_meta or class names|weights is None|palette does)')
            super()._load_weights_to_model(model, checkpoint, cfg)
        source = 'the checkpoint'
        if 'dataset_meta' not in meta and 'CLASSES' not in meta:
            source = 'the config (test_dataloader.dataset), as the checkpoint has no class names'
            with toolkit_scope(cfg):
                metainfo = DATASETS.build(dict(cfg.test_dataloader.dataset, lazy_init=True)).metainfo
            model.dataset_meta = dict(classes=metainfo['classes'], palette=metainfo.get('palette'))
        classes, predicted = model.dataset_meta.get('classes'), predicted_classes(model)
        if classes is None or predicted is not None and len(classes) != predicted:
            raise ConfigError(f'{self.weights_path}: {len(classes or ())} class names from {source}, but the model '
                              f'predicts {predicted} classes')


def predicted_classes(model: nn.Module) -> Optional[int]:
    """How many classes the model's (last) box or decode head predicts; None when it has no such head."""
    head = getattr(model, 'decode_head', None) or getattr(model, 'panoptic_head', None)  # Mask2Former: things + stuff
    if head is None:  # two-stage detectors predict classes in the RoI head, one-stage ones in bbox_head
        roi_head = getattr(model, 'roi_head', None)
        head = getattr(roi_head, 'bbox_head', None) if roi_head is not None else getattr(model, 'bbox_head', None)
    if isinstance(head, nn.ModuleList):
        head = head[-1]
    return getattr(head, 'num_classes', None)


def build_inferencer(config: str, checkpoint: str, device: str = 'cpu') -> BaseInferencer:
    """mmdet's ``DetInferencer`` or mmseg's ``MMSegInferencer`` (by the config's ``default_scope``) for ``config``
    with ``checkpoint``, with the fit check and the class names of ``FittingWeights``.

    Raises:
        FileNotFoundError: the config or the checkpoint does not exist.
        ValueError: an unknown device, a checkpoint that does not fit, class names that do not match the model.
    """
    cfg = load_config(config)
    if '://' not in checkpoint and not osp.exists(checkpoint):  # a folder: transformers' save_pretrained
        raise MissingFileError(f'checkpoint {checkpoint} does not exist')
    check_device(device)
    if cfg.default_scope == 'mmdet':
        from mmdet.apis import DetInferencer as Base
        extra = dict(show_progress=False)
    else:
        from mmseg.apis import MMSegInferencer as Base
        extra = {}
    cls = type(f'Fitting{Base.__name__}', (FittingWeights, Base), dict(weights_path=checkpoint))
    return cls(model=cfg, weights=checkpoint, device=device, **extra)


@dataclass
class Summary:
    """What a run did: the images, the videos and their frames it predicted on, and the seconds it took."""
    images: int = 0
    videos: int = 0
    frames: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        videos = f' and {_count(self.videos, "video")} ({_count(self.frames, "frame")})' if self.videos else ''
        return (f'{_count(self.images, "image")}{videos} in {self.seconds:.1f} s, '
                f'{self.seconds / max(self.images + self.frames, 1):.3f} s per image')


def _count(number: int, noun: str) -> str:
    return f'{number} {noun}{"" if number == 1 else "s"}'


def _frames(source: Source) -> Iterator[Tuple[str, np.ndarray]]:
    """(output name, BGR image) of each image or video frame of ``source``."""
    if not source.video:
        image = mmcv.imread(source.path, flag='color')  # as the pipelines' LoadImageFromFile decodes
        if image is None:
            raise DataError(f'{source.path}: not a readable image')
        yield source.name, image
        return
    reader = mmcv.VideoReader(source.path)
    stem = osp.splitext(source.name)[0]
    for index, frame in enumerate(reader):
        yield osp.join(stem, f'{index:06d}'), frame


def frame_count(source: Source) -> int:
    """1 for an image, the number of frames for a video (a ``ValueError`` when it cannot be decoded)."""
    if not source.video:
        return 1
    try:
        count = mmcv.VideoReader(source.path).frame_cnt
    except Exception as error:  # mmcv fails with assorted types on a file that is not a video
        raise DataError(f'{source.path}: not a readable video ({error})') from None
    if count <= 0:
        raise DataError(f'{source.path}: not a readable video (no frames)')
    return count


def draw(inferencer: BaseInferencer, image: np.ndarray, pred, score_thr: float) -> np.ndarray:
    """``image`` (BGR) with ``pred`` drawn over it, as a BGR image."""
    visualizer = inferencer.visualizer
    rgb = mmcv.bgr2rgb(image)
    if 'pred_panoptic_seg' in pred and not has_segments(pred, len(inferencer.model.dataset_meta['classes'])):
        pred = pred.clone()  # VOID everywhere: mmdet's drawing of no segment fails (np.stack of nothing)
        del pred.pred_panoptic_seg
    if hasattr(pred, 'pred_instances'):
        visualizer.add_datasample('image', rgb, pred, draw_gt=False, pred_score_thr=score_thr)
    else:
        visualizer.set_dataset_meta(**inferencer.model.dataset_meta)
        visualizer.add_datasample('image', rgb, pred, draw_gt=False, with_labels=True)
    return mmcv.rgb2bgr(visualizer.get_image())


def _write_prediction(pred, name: str, path: str, classes: Sequence[str], score_thr: float) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    if hasattr(pred, 'pred_instances'):
        record = dict(image=name, **detection_record(pred, classes, score_thr))
        if hasattr(pred, 'pred_panoptic_seg'):  # Mask2Former panoptic: the COCO panoptic PNG, segments in the JSON
            record['segments_info'], png = panoptic_segments(pred, classes)
            write_atomic(path + '.png', png)
        write_atomic(path + '.json', json.dumps(record))
    else:
        write_atomic(path + '.png', label_png(pred))


def run_inference(inferencer: BaseInferencer, sources: Sequence[Source], out_dir: str, score_thr: float = 0.3,
                  batch_size: int = 1, progress: bool = True) -> Summary:
    """Predict on every image and video frame of ``sources``; write what the module docstring lists.

    Args:
        inferencer: From ``build_inferencer`` (or any ``DetInferencer`` / ``MMSegInferencer``).
        sources: From ``collect_inputs``.
        out_dir: Where ``vis/`` and ``preds/`` go.
        score_thr: Detections below this score are neither drawn nor written. Default: 0.3.
        batch_size: Video frames per forward pass; images go one at a time (their sizes differ, which mmseg's
            batching refuses). Default: 1.
        progress: Show a progress bar over the images and frames. Default: True.
    """
    if batch_size < 1:
        raise ConfigError(f'batch_size={batch_size}: must be at least 1')
    counts = [frame_count(source) for source in sources]  # a broken video fails before any work
    summary, start = Summary(), time.perf_counter()
    bar = ProgressBar(sum(counts)) if progress else None
    classes = inferencer.model.dataset_meta['classes']
    for source in sources:
        stem = osp.splitext(source.name)[0]
        writer = partial = None
        if source.video:
            summary.videos += 1
            video = osp.join(out_dir, 'vis', stem + '.mp4')
            partial = osp.join(out_dir, 'vis', stem + PARTIAL_SUFFIX + '.mp4')  # cv2 picks the container by suffix
            os.makedirs(osp.dirname(video), exist_ok=True)
            reader = mmcv.VideoReader(source.path)
            writer = cv2.VideoWriter(partial, cv2.VideoWriter_fourcc(*'mp4v'), reader.fps or 25.0,
                                     (reader.width, reader.height))
        else:
            summary.images += 1
        frames = _frames(source)
        while batch := [item for _, item in zip(range(batch_size), frames)]:
            preds = inferencer.forward(inferencer.collate_fn([inferencer.pipeline(image) for _, image in batch]))
            for (name, image), pred in zip(batch, preds):
                _write_prediction(pred, name, osp.join(out_dir, 'preds', osp.splitext(name)[0]), classes,
                                  score_thr)
                drawn = draw(inferencer, image, pred, score_thr)
                if writer is not None:
                    writer.write(drawn)
                    summary.frames += 1
                else:
                    path = osp.join(out_dir, 'vis', name)
                    os.makedirs(osp.dirname(path), exist_ok=True)
                    write_atomic(path, cv2.imencode(osp.splitext(name)[1], drawn)[1].tobytes())
                if bar is not None:
                    bar.update()
        if writer is not None:
            writer.release()
            commit(partial, video)
    if bar is not None:
        print(flush=True)  # the bar leaves its line unfinished
    summary.seconds = time.perf_counter() - start
    return summary
