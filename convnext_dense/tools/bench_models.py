"""Whole models side by side: our Cascade Mask R-CNN ConvNeXt-T and UperNet ConvNeXt-T configs against the stock
mmdet 3.3 / mmseg 1.2 ConvNeXt configs (mmpretrain's backbone), with the same weights, image and size.

The stock model is built with random weights and its state dict is loaded into ours (``map_whole_model`` renames
mmpretrain's backbone keys), so both compute the same function; the outputs' largest difference is recorded. The
image is matplotlib's sample photo, resized. Timed: batch-1 inference (``test_step``) and one training iteration
(``train_step``: forward with losses, backward, AdamW through each config's own layer-decay constructor; AMP on GPU),
the two models alternating in every repetition (which one goes first, too) so that a drifting machine slows both
alike. Inference is split into
preprocessing, backbone, neck and the rest (heads and post-processing) with forward hooks.
"""
import statistics
import time
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.optim import build_optim_wrapper
from torch import nn

from ..checkpoint.loading import map_whole_model
from .cli import build_model, toolkit_scope
from .export_models import PHOTO
from .peers import import_mmpretrain

# name: (our config, relative to the repository root; the stock config, None for none). The demo configs (atto,
# narrow heads) stand in for the T ones in the suites' --quick form, which a test runs.
MODELS = {
    'demo_cascade': ('configs/coco/demo_cascade_convnext.py', None),
    'demo_upernet': ('configs/ade20k/demo_upernet_convnext.py', None),
    'cascade_t': ('configs/coco/cascade_convnext_t.py',
                  'mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py'),
    'upernet_t': ('configs/ade20k/upernet_convnext_t_512.py',
                  'mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py'),
}
PARTS = ('data_preprocessor', 'backbone', 'neck')


def sample_image(height: int, width: int) -> torch.Tensor:
    """matplotlib's sample photo (grace_hopper.jpg) resized to (3, height, width), uint8 BGR as mm pipelines load."""
    import mmcv
    image = mmcv.imread(str(PHOTO))
    return torch.from_numpy(np.ascontiguousarray(mmcv.imresize(image, (width, height)).transpose(2, 0, 1)))


def batch(scope: str, image: torch.Tensor, train: bool, num_classes: int = 150) -> dict:
    """A batch in the toolkit's data format: the image for inference; for training, it and its mirror image (two
    per GPU as in the recipes; a batch of one cannot train UperNet's pooled BatchNorm), each with four boxes and
    masks or a label map."""
    height, width = image.shape[-2:]
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width),
                scale_factor=(1.0, 1.0), flip=False, flip_direction=None)
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        from mmdet.structures.mask import BitmapMasks
        from mmengine.structures import InstanceData
        sample = DetDataSample(metainfo=meta)
        if train:
            boxes = torch.tensor([[0.1, 0.1, 0.5, 0.6], [0.4, 0.2, 0.9, 0.9], [0.2, 0.5, 0.6, 0.95],
                                  [0.6, 0.05, 0.95, 0.4]]) * torch.tensor([width, height, width, height])
            masks = np.zeros((4, height, width), dtype=np.uint8)
            for m, (x1, y1, x2, y2) in zip(masks, boxes.int().tolist()):
                m[y1:y2, x1:x2] = 1
            sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 1, 2, 3]),
                                               masks=BitmapMasks(masks, height, width))
    else:
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        sample = SegDataSample(metainfo=meta)
        if train:
            labels = (torch.arange(height)[:, None] // 16 * 7 + torch.arange(width)[None] // 16) % num_classes
            sample.gt_sem_seg = PixelData(data=labels[None].long())
    if not train:
        return dict(inputs=[image], data_samples=[sample])
    mirrored = sample.clone()
    if scope == 'mmdet':
        boxes = mirrored.gt_instances.bboxes
        mirrored.gt_instances.bboxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0],
                                                    boxes[:, 3]], dim=1)
        mirrored.gt_instances.masks = mirrored.gt_instances.masks.flip('horizontal')
    else:
        mirrored.gt_sem_seg = PixelData(data=sample.gt_sem_seg.data.flip(-1))
    return dict(inputs=[image, image.flip(-1)], data_samples=[sample, mirrored])


def build_pair(name: str, repo: str, device: torch.device) -> Tuple[nn.Module, Optional[nn.Module], Config,
                                                                       Optional[Config], str]:
    """(ours, stock or None, our config, stock config or None, why the stock one is skipped or '')."""
    ours_path, stock_path = MODELS[name]
    ours_cfg = Config.fromfile(f'{repo}/{ours_path}')
    ours = build_model(ours_cfg).to(device)
    if stock_path is None:
        return ours, None, ours_cfg, None, 'no stock counterpart'
    mmpretrain_models, why = import_mmpretrain()
    if mmpretrain_models is None:
        return ours, None, ours_cfg, None, why
    stock_cfg = get_config(stock_path)
    stock = build_model(stock_cfg).to(device)
    state_dict, layout = map_whole_model(stock.state_dict())
    if layout is None:
        raise ValueError(f'the backbone of {stock_path} is no ConvNeXt layout the loader knows')
    ours.load_state_dict(state_dict, strict=True)
    return ours, stock, ours_cfg, stock_cfg, ''


def optim_wrapper(model: nn.Module, cfg: Config, device: torch.device) -> object:
    """The config's optimizer (its layer-decay constructor), AMP on GPU, plain on CPU."""
    wrapper = cfg.optim_wrapper.copy()
    wrapper.pop('loss_scale', None)
    wrapper['type'] = 'AmpOptimWrapper' if device.type == 'cuda' else 'OptimWrapper'
    if device.type == 'cuda':
        wrapper['loss_scale'] = 'dynamic'
    with toolkit_scope(cfg):
        return build_optim_wrapper(model, wrapper)


class PartTimes:
    """Seconds spent in the model's preprocessor, backbone and neck during the calls made inside this block."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model, self.device, self.seconds, self._start, self._handles = model, device, {}, {}, []

    def __enter__(self) -> 'PartTimes':
        for part in PARTS:
            module = getattr(self.model, part, None)
            if isinstance(module, nn.Module):
                self._handles += [module.register_forward_pre_hook(lambda *_, p=part: self._tick(p, True)),
                                  module.register_forward_hook(lambda *_, p=part: self._tick(p, False))]
        return self

    def _tick(self, part: str, start: bool) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        if start:
            self._start[part] = time.perf_counter()
        else:
            self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - self._start[part]

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()


def timed(fn: Callable[[], None], device: torch.device) -> float:
    start = time.perf_counter()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def compare(name: str, repo: str, device: str, size: Tuple[int, int], warmup: int, reps: int) -> Dict[str, object]:
    """Inference and training-iteration seconds (median), parts and peak memory of ours and the stock model."""
    dev = torch.device(device)
    torch.manual_seed(0)
    ours, stock, ours_cfg, stock_cfg, why = build_pair(name, repo, dev)
    sides = {'ours': (ours, ours_cfg)} | ({'stock': (stock, stock_cfg)} if stock is not None else {})
    scope = ours_cfg.default_scope
    image = sample_image(*size)
    head = getattr(ours, 'decode_head', None)
    infer_data = batch(scope, image, False)
    train_data = batch(scope, image, True, head.num_classes if head else 150)
    result: Dict[str, object] = dict(model=name, size=list(size), stock_skipped=why or None)
    with torch.no_grad():
        predictions = {side: model.eval().test_step(infer_data)[0] for side, (model, _) in sides.items()}
    if stock is not None:
        result['max_abs_diff'] = prediction_difference(scope, predictions['ours'], predictions['stock'])
    result.update(time_sides(sides, infer_data, train_data, dev, warmup, reps))
    return result


def time_sides(sides: Dict[str, Tuple[nn.Module, Config]], infer_data: dict, train_data: dict, dev: torch.device,
               warmup: int, reps: int) -> Dict[str, object]:
    """Median inference and training-iteration seconds of each side (its model and config), the sides alternating
    in every repetition; inference split into parts; ``stock / ours`` ratios; peak training memory on CUDA."""
    result: Dict[str, object] = {}
    for mode in ('infer', 'train'):
        wrappers = {side: optim_wrapper(m, cfg, dev) for side, (m, cfg) in sides.items()} if mode == 'train' else {}
        times: Dict[str, list] = {side: [] for side in sides}
        parts: Dict[str, list] = {side: [] for side in sides}
        for i in range(warmup + reps):
            # the order alternates: the second model of a round can reuse memory the first one freed
            for side, (model, _) in list(sides.items())[::1 if i % 2 == 0 else -1]:
                if mode == 'infer':
                    model.eval()
                    with torch.no_grad(), PartTimes(model, dev) as part_times:
                        seconds = timed(lambda: model.test_step(infer_data), dev)
                else:
                    model.train()
                    seconds = timed(lambda: model.train_step(train_data, wrappers[side]), dev)
                if i >= warmup:
                    times[side].append(seconds)
                    if mode == 'infer':
                        parts[side].append(part_times.seconds)
        for side in sides:
            result[f'{side}_{mode}_s'] = statistics.median(times[side])
            if mode == 'infer':
                result[f'{side}_infer_parts_s'] = {p: statistics.median(t.get(p, 0.0) for t in parts[side])
                                                   for p in PARTS}
        if 'stock' in sides:
            result[f'{mode}_ratio'] = result[f'stock_{mode}_s'] / result[f'ours_{mode}_s']
    if dev.type == 'cuda':
        for side, (model, _) in sides.items():
            torch.cuda.reset_peak_memory_stats(dev)
            model.train().train_step(train_data, optim_wrapper(model, sides[side][1], dev))
            result[f'{side}_train_peak_mb'] = torch.cuda.max_memory_allocated(dev) / 2**20
    return result


def prediction_difference(scope: str, ours: object, stock: object) -> float:
    """Largest difference of the predictions: box coordinates and scores, or seg logits."""
    if scope == 'mmdet':
        a, b = ours.pred_instances, stock.pred_instances
        if len(a) != len(b):
            return float('inf')
        if len(a) == 0:
            return 0.0
        return max((a.bboxes - b.bboxes).abs().max().item(), (a.scores - b.scores).abs().max().item())
    return (ours.seg_logits.data - stock.seg_logits.data).abs().max().item()


def smoke(config: str, repo: str, device: str, iterations: int) -> Dict[str, object]:
    """Train a (demo) config's model for ``iterations`` steps on one batch (AMP on GPU): are the losses finite and
    falling?"""
    dev = torch.device(device)
    torch.manual_seed(0)
    cfg = Config.fromfile(f'{repo}/{config}')
    model = build_model(cfg).to(dev).train()
    wrapper = optim_wrapper(model, cfg, dev)
    height, width = cfg.get('img_scale', (128, 128))
    head = getattr(model, 'decode_head', None)
    data = batch(cfg.default_scope, sample_image(height, width), True, head.num_classes if head else 150)
    losses = []
    for _ in range(iterations):
        log = model.train_step(data, wrapper)
        losses.append(float(log['loss']))
    k = max(1, iterations // 4)
    finite = all(np.isfinite(losses))
    return dict(losses=losses, finite=finite, decreasing=finite and sum(losses[-k:]) < sum(losses[:k]))
