"""ConvNeXt beside Swin under the same Mask2Former recipe (the paper's claim: Swin's accuracy at higher throughput).

* ``backbones``: our ConvNeXt-T and mmdet's ``SwinTransformer`` as the stock Swin-T Mask2Former recipes build it
  (embed 96, depths 2-2-6-2, window 7, drop path 0.3; every stage out), random weights, the same input: batch
  inference and forward + backward (the outputs' means summed), alternating in every repetition.
* ``mask2former``: the two whole Mask2Former T models of the ADE20K recipe (``OURS``, ``STOCK``) at the recipe's
  crop: batch-1 inference and one training iteration on a label map of 20 classes (about what an ADE20K crop
  holds; the matcher's and the losses' cost grows with them), each config's own optimizer (ours through our
  constructor), timed by ``bench_models.time_sides``, which also splits inference into the backbone and the rest
  (the Mask2Former head: pixel decoder, transformer decoder).

``stock / ours`` ratios above 1 mean ConvNeXt is faster. The quick form (a CPU test runs it) uses 64 px inputs,
one repetition, ConvNeXt-atto beside a Swin of the same widths and, for the whole models, the shrunk head.
"""
import statistics
from typing import Dict, Tuple

import torch
from mmengine.config import Config
from mmengine.hub import get_config

from ..models.backbone import ConvNeXt
from . import bench_models
from .cli import build_model

OURS = 'configs/ade20k/mask2former_convnext_t_512.py'
STOCK = 'mmseg::mask2former/mask2former_swin-t_8xb2-160k_ade20k-512x512.py'
QUICK = 'tests/configs/tiny_m2f_seg.py'
SWIN_T = 'mmdet::mask2former/mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco.py'  # its backbone: mmdet's Swin


def swin_backbone(quick: bool) -> torch.nn.Module:
    """mmdet's SwinTransformer as the stock Swin-T recipe configures it, without its checkpoint."""
    from mmdet.registry import MODELS
    cfg = get_config(SWIN_T).model.backbone
    cfg.init_cfg = None
    if quick:  # atto's widths and blocks: 40 channels in 4 stages of 2, 2, 6, 2 blocks
        cfg.update(embed_dims=40, num_heads=[1, 2, 4, 8])
    return MODELS.build(cfg)


def backbones(device: str, shape: Tuple[int, ...], warmup: int, reps: int, quick: bool) -> Dict[str, object]:
    """images/s of ConvNeXt-T and Swin-T (atto-sized for ``quick``) on the same input, and the ratios."""
    dev = torch.device(device)
    torch.manual_seed(0)
    models = {'ours': ConvNeXt('atto' if quick else 'tiny', drop_path_rate=0.3), 'stock': swin_backbone(quick)}
    models = {side: m.to(dev) for side, m in models.items()}
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dev)
    result: Dict[str, object] = dict(shape=list(shape), params={side: sum(p.numel() for p in m.parameters())
                                                                 for side, m in models.items()})
    for mode in ('infer', 'train'):
        seconds: Dict[str, list] = {side: [] for side in models}
        for i in range(warmup + reps):
            for side, model in list(models.items())[::1 if i % 2 == 0 else -1]:
                model.train(mode == 'train')
                if mode == 'infer':
                    with torch.no_grad():
                        took = bench_models.timed(lambda: model(x), dev)
                else:
                    took = bench_models.timed(lambda: sum(o.float().mean() for o in model(x)).backward(), dev)
                if i >= warmup:
                    seconds[side].append(took)
        for side in models:
            result[f'{side}_{mode}_img_s'] = shape[0] / statistics.median(seconds[side])
        result[f'{mode}_ratio'] = result[f'ours_{mode}_img_s'] / result[f'stock_{mode}_img_s']
    return result


def mask2former(repo: str, device: str, size: Tuple[int, int], warmup: int, reps: int,
                quick: bool = False) -> Dict[str, object]:
    """The two whole Mask2Former T models (ADE20K recipe) side by side: seconds, parts, ratios. ``quick``: the
    test's shrunk recipe (``tests/configs/tiny_m2f_seg.py``: atto) beside the stock one with its head and Swin of
    atto's widths."""
    dev = torch.device(device)
    torch.manual_seed(0)
    ours_cfg, stock_cfg = Config.fromfile(f'{repo}/{QUICK if quick else OURS}'), get_config(STOCK)
    if quick:
        stock_cfg.model.decode_head = ours_cfg.model.decode_head
        stock_cfg.model.backbone.update(embed_dims=40, num_heads=[1, 2, 4, 8])
    for cfg in (ours_cfg, stock_cfg):
        cfg.model.backbone.init_cfg = None
        cfg.model.data_preprocessor.size = size  # the recipes pad every image to their crop
    sides = {'ours': (build_model(ours_cfg).to(dev), ours_cfg), 'stock': (build_model(stock_cfg).to(dev), stock_cfg)}
    image = bench_models.sample_image(*size)
    infer_data = bench_models.batch('mmseg', image, False)
    train_data = bench_models.batch('mmseg', image, True, min(20, ours_cfg.model.decode_head.num_classes))
    result: Dict[str, object] = dict(ours=QUICK if quick else OURS, stock=STOCK, size=list(size))
    result.update(bench_models.time_sides(sides, infer_data, train_data, dev, warmup, reps))
    return result
