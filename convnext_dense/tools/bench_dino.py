"""DINO-4scale with ConvNeXt-T beside mmdet's own DINO-4scale R50, the same input: the backbone's cost in a DETR.

``dino``: our ``configs/coco/dino_convnext_t_384_4scale_12ep.py`` (``OURS``) and mmdet 3.3's
``dino/dino-4scale_r50_8xb2-12e_coco.py`` (``STOCK``), both with random weights (the stock ``init_cfg`` names
torchvision's ResNet-50 file, which is not needed for timing): batch-1 inference and one training iteration on
four boxes, each config's own optimizer, timed by ``bench_models.time_sides`` (the models alternating; inference
split into preprocessing, backbone, neck and the rest: encoder, decoder, head, post-processing). The two differ in
the backbone (and its positional-encoding constants) only, so ``stock / ours`` above 1 means the ConvNeXt-T model
is faster.

The quick form (a CPU test runs it) uses the test's shrunk recipe (``QUICK``) at 64 px, one repetition, beside the
stock recipe with the same shrunk transformer on a ResNet-18.
"""
import copy
from typing import Dict, Tuple

import torch
from mmengine.config import Config
from mmengine.hub import get_config

from . import bench_models
from .cli import build_model

OURS = 'configs/coco/dino_convnext_t_384_4scale_12ep.py'
STOCK = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
QUICK = 'tests/configs/tiny_dino.py'


def dino(repo: str, device: str, size: Tuple[int, int], warmup: int, reps: int,
         quick: bool = False) -> Dict[str, object]:
    """The two whole DINO models side by side: seconds, parts, ``stock / ours`` ratios (peak memory on CUDA)."""
    dev = torch.device(device)
    torch.manual_seed(0)
    ours_cfg, stock_cfg = Config.fromfile(f'{repo}/{QUICK if quick else OURS}'), get_config(STOCK)
    if quick:
        for key in ('num_queries', 'encoder', 'decoder', 'bbox_head', 'dn_cfg', 'test_cfg'):
            stock_cfg.model[key] = copy.deepcopy(ours_cfg.model[key])  # DINO edits the dicts it is built from
        stock_cfg.model.backbone.update(depth=18, frozen_stages=-1)
        stock_cfg.model.neck.in_channels = [128, 256, 512]
    for cfg in (ours_cfg, stock_cfg):
        cfg.model.backbone.init_cfg = None
    sides = {'ours': (build_model(ours_cfg).to(dev), ours_cfg), 'stock': (build_model(stock_cfg).to(dev), stock_cfg)}
    image = bench_models.sample_image(*size)
    infer_data = bench_models.batch('mmdet', image, False)
    train_data = bench_models.batch('mmdet', image, True)
    result: Dict[str, object] = dict(ours=QUICK if quick else OURS, stock=STOCK, size=list(size))
    result.update(bench_models.time_sides(sides, infer_data, train_data, dev, warmup, reps))
    return result
