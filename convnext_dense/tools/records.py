"""What ``tools/infer.py`` writes for one image's prediction (see its module docstring for the files).

Panoptic (Mask2Former): mmdet's ``pred_panoptic_seg`` holds per pixel ``label + instance * INSTANCE_OFFSET``
(instance >= 1 for things, 0 for stuff; label = the number of classes for VOID). Written instead, in the COCO
panoptic format: the RGB-encoded segment ids (id = R + 256 G + 256^2 B, 0 = VOID; panopticapi's ``rgb2id`` reads
them) and ``segments_info``, each segment's ``id``, ``category_id`` (an index into ``classes``), ``isthing`` and
``area`` in pixels.
"""
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from ..synthetic.scenes import id2rgb  # not .panoptic: that imports pycocotools, which seg-only installs lack

INSTANCE_OFFSET = 1000  # mmdet.evaluation.functional.panoptic_utils.INSTANCE_OFFSET, without importing panopticapi

def detection_record(pred, classes: Sequence[str], score_thr: float) -> dict:
    """The JSON record of one image's detections with a score of at least ``score_thr``."""
    from pycocotools import mask as mask_util
    instances = pred.pred_instances
    keep = instances[instances.scores >= score_thr].cpu()
    height, width = pred.ori_shape
    masks = [mask_util.encode(np.asfortranarray(m.numpy().astype(np.uint8))) for m in keep.get('masks', [])]
    return dict(height=int(height), width=int(width), classes=list(classes), labels=keep.labels.tolist(),
                scores=keep.scores.tolist(), bboxes=keep.bboxes.tolist(),
                masks=[dict(size=[int(s) for s in m['size']], counts=m['counts'].decode()) for m in masks])


def label_png(pred) -> bytes:
    """One image's class-index map as PNG bytes (8-bit, or 16-bit above 255 classes)."""
    labels = pred.pred_sem_seg.data[0].cpu().numpy()
    return cv2.imencode('.png', labels.astype(np.uint8 if labels.max(initial=0) < 256 else np.uint16))[1].tobytes()


def panoptic_segments(pred, classes: Sequence[str]) -> Tuple[List[dict], bytes]:
    """(``segments_info``, the RGB id map as PNG bytes) of one image's ``pred_panoptic_seg``."""
    values = pred.pred_panoptic_seg.sem_seg[0].cpu().numpy()
    ids = np.zeros(values.shape, np.int64)
    segments: List[dict] = []
    for value in np.unique(values):
        label = int(value) % INSTANCE_OFFSET
        if label >= len(classes):  # VOID
            continue
        mask = values == value
        ids[mask] = segment_id = len(segments) + 1
        segments.append(dict(id=segment_id, category_id=label, isthing=bool(value >= INSTANCE_OFFSET),
                             area=int(mask.sum())))
    return segments, cv2.imencode('.png', id2rgb(ids)[:, :, ::-1])[1].tobytes()  # cv2 writes BGR


def has_segments(pred, num_classes: int) -> bool:
    """Whether one image's ``pred_panoptic_seg`` holds any segment (not VOID everywhere)."""
    return bool((pred.pred_panoptic_seg.sem_seg % INSTANCE_OFFSET < num_classes).any())
