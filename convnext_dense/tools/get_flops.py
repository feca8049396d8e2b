"""Parameters and FLOPs of a detector or segmentor config, counted with mmengine's complexity analysis.

mmengine's ``FlopAnalyzer`` (fvcore's counter) traces one forward pass and counts one fused multiply-add as one
FLOP, the convention of the published tables (the official ConvNeXt dense code measured with mmcv's counter, which
counts the same way). Element-wise ops (GELU, residual adds, layer scale) are not counted by either; RoIAlign is an
mmcv op the tracer cannot see into and is listed as not counted. The analyzer is used directly rather than through
``get_model_complexity_info``, which traces a second time for activation counts and returns no per-module numbers.

What runs is the test-time work of the published measurements (the official ConvNeXt repository's
``object_detection/`` and ``semantic_segmentation/`` ``get_flops``):

* detection (as mmdet 2.x's ``forward_dummy``): backbone, neck, the RPN's convolutions, then the RoI heads on
  ``test_cfg.rpn.max_per_img`` proposals (1000 in the COCO configs), mask heads on the ``test_cfg.rcnn.max_per_img``
  detections that reach them at test time (100). mmdet's ``CascadeRoIHead.forward`` runs its mask heads on every
  proposal, so their count is scaled to the detections kept (mask-head FLOPs are linear in the number of RoIs).
  Detectors without RoI heads run ``_forward``.
* segmentation: ``_forward`` (backbone, neck, decode head); the auxiliary head only trains and is not run, but its
  parameters are counted, as published.

Parameters are all of the model's parameters (``mmengine.analysis.parameter_count``).
"""
import inspect
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ..utils.errors import ConfigError
from .cli import build_model

# Input size (H, W) of the published FLOPs: 1280x800 (W x H) for COCO detectors. Segmentation configs give theirs
# in the test pipeline's Resize (2048x512 for the 512 crops, 2560x640 for the 640 crops).
DET_SHAPE = (800, 1280)


@dataclass
class Complexity:
    """Parameter and FLOP counts of one model at one input size.

    Attributes:
        shape: Input (H, W).
        params: Number of parameters.
        flops: Multiply-adds of one forward pass on one image.
        part_params: Parameters per top-level submodule (backbone, neck, heads).
        part_flops: FLOPs per top-level submodule (0 for submodules that do not run at test time).
        not_counted: Ops the analysis met but has no count for, with how often they ran.
    """
    shape: Tuple[int, int]
    params: int
    flops: int
    part_params: Dict[str, int] = field(default_factory=dict)
    part_flops: Dict[str, int] = field(default_factory=dict)
    not_counted: Dict[str, int] = field(default_factory=dict)


def human(n: float) -> str:
    """``n`` with an SI suffix and three significant figures, as the recipe table writes it (86.1M, 741G)."""
    for suffix, scale in (('T', 1e12), ('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(n) >= scale:
            return f'{n / scale:.3g}{suffix}'
    return f'{n:.3g}'


def default_shape(cfg: Config) -> Tuple[int, int]:
    """The input (H, W) of the published FLOPs for this config.

    Detection: 800 x 1280. Segmentation: the ``scale`` (W, H) of the test pipeline's ``Resize``.

    Raises:
        ValueError: a segmentation config whose test pipeline has no ``Resize`` with a ``scale``.
    """
    if cfg.default_scope == 'mmdet':
        return DET_SHAPE
    for step in cfg.test_dataloader.dataset.get('pipeline', []):
        if step.get('type') == 'Resize' and step.get('scale') is not None:
            width, height = step['scale']
            return int(height), int(width)
    raise ConfigError('this config\'s test pipeline has no Resize with a "scale" to take the input size from; '
                      'give the size (--shape H W)')


def _random_boxes(num: int, height: int, width: int) -> Tensor:
    """``num`` seeded (x1, y1, x2, y2) boxes inside the image, 8 px to half the image per side."""
    gen = torch.Generator().manual_seed(0)
    size = torch.rand(num, 2, generator=gen) * torch.tensor([width / 2 - 8, height / 2 - 8]) + 8
    corner = torch.rand(num, 2, generator=gen) * (torch.tensor([width, height]) - size)
    return torch.cat([corner, corner + size], dim=1)


class _TwoStageTestWork(nn.Module):
    """A two-stage detector's test-time network work as one traceable module: image -> features -> heads."""

    def __init__(self, model: nn.Module, samples: list) -> None:
        super().__init__()
        self.model = model
        self.samples = samples
        height, width = samples[0].img_shape
        self.proposals = [InstanceData(bboxes=_random_boxes(model.test_cfg.rpn.max_per_img, height, width))]

    def forward(self, image: Tensor) -> tuple:
        x = self.model.extract_feat(image)
        # the RPN's convolutions; decoding and NMS of its proposals cost no multiply-adds
        rpn_outs = self.model.rpn_head(x) if self.model.with_rpn else ()
        return rpn_outs, self.model.roi_head.forward(x, self.proposals, self.samples)


class _DenseForward(nn.Module):
    """``model._forward(image, samples)``: the toolkit's tensor-mode forward without post-processing."""

    def __init__(self, model: nn.Module, samples: list) -> None:
        super().__init__()
        self.model = model
        self.samples = samples

    def forward(self, image: Tensor) -> tuple:
        head = getattr(self.model, 'decode_head', None)
        if head is not None and 'batch_data_samples' in inspect.signature(head.forward).parameters:
            return head.forward(self.model.extract_feat(image), self.samples)  # mmseg's Mask2Former head needs them
        return self.model._forward(image, self.samples)


def _mask_heads(detector: nn.Module) -> Dict[str, nn.Module]:
    """A two-stage detector's mask heads by module name (one per cascade stage), or none."""
    roi_head = detector.roi_head
    if not roi_head.with_mask:
        return {}
    if isinstance(roi_head.mask_head, nn.ModuleList):
        return {f'roi_head.mask_head.{i}': head for i, head in enumerate(roi_head.mask_head)}
    return {'roi_head.mask_head': roi_head.mask_head}


def _roi_counter(seen: List[int]) -> Callable[[nn.Module, tuple], None]:
    """A forward pre-hook that appends the number of RoIs (the first input's length) of each call to ``seen``."""
    def hook(module: nn.Module, args: tuple) -> None:
        seen.append(len(args[0]))
    return hook


def complexity(model: nn.Module, shape: Tuple[int, int], toolkit: Optional[str] = None) -> Complexity:
    """Count the parameters and the test-time FLOPs of ``model`` on one 3 x H x W image.

    Args:
        model: A detector (mmdet), a segmentor (mmseg), or any module taking an (N, 3, H, W) tensor, e.g. the
            backbone alone.
        shape: Input (H, W).
        toolkit: 'mmdet' or 'mmseg' for a whole model of that toolkit (see the module docstring for what runs);
            None runs ``model(image)``. Default: None.
    """
    if toolkit not in (None, 'mmdet', 'mmseg'):
        raise ConfigError(f'toolkit={toolkit!r}; valid: None, "mmdet", "mmseg"')
    height, width = shape
    image = torch.randn(1, 3, height, width)
    meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape, batch_input_shape=shape, scale_factor=(1.0, 1.0))
    mask_heads: Dict[str, nn.Module] = {}
    if toolkit == 'mmdet':
        from mmdet.structures import DetDataSample  # detection only: mmseg users need not have mmdet
        samples = [DetDataSample(metainfo=meta)]
        if getattr(model, 'with_roi_head', False):
            traced: nn.Module = _TwoStageTestWork(model, samples)
            mask_heads = _mask_heads(model)
        else:
            traced = _DenseForward(model, samples)
    elif toolkit == 'mmseg':
        from mmseg.structures import SegDataSample
        traced = _DenseForward(model, [SegDataSample(metainfo=meta)])
    else:
        traced = model
    prefix = '' if traced is model else 'model.'

    rois_per_call: Dict[str, List[int]] = {name: [] for name in mask_heads}
    handles = [head.register_forward_pre_hook(_roi_counter(rois_per_call[name])) for name, head in mask_heads.items()]
    analyzer = FlopAnalyzer(traced, (image,))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings('none')
    try:
        with torch.no_grad():
            by_module = analyzer.by_module()
    finally:
        for handle in handles:
            handle.remove()
    part_flops = {name: by_module[prefix + name] for name, _ in model.named_children()}
    # mmdet's CascadeRoIHead.forward runs the mask heads on every proposal; at test time they see only the kept
    # detections. Their FLOPs are linear in the number of RoIs, so each head's count is scaled to what it would see.
    kept = model.test_cfg.rcnn.max_per_img if mask_heads else 0
    correction = round(sum(by_module[prefix + name] / len(seen) * (min(kept, n) / n - 1)
                           for name, seen in rois_per_call.items() for n in seen))
    if mask_heads:
        part_flops['roi_head'] += correction

    params = parameter_count(model)
    return Complexity(shape=(height, width), params=params[''], flops=by_module[''] + correction,
                      part_params={name: params[name] for name, _ in model.named_children()},
                      part_flops=part_flops, not_counted=dict(analyzer.unsupported_ops()))


def config_complexity(cfg: Config, shape: Optional[Tuple[int, int]] = None) -> Complexity:
    """Parameters and FLOPs of a config's model (random weights), at ``shape`` or the published input size.

    Args:
        cfg: A loaded config whose ``default_scope`` is 'mmdet' or 'mmseg'.
        shape: Input (H, W). Default: None (``default_shape(cfg)``).
    """
    shape = default_shape(cfg) if shape is None else shape
    model = build_model(cfg)
    return complexity(model, shape, cfg.default_scope)


def format_complexity(c: Complexity) -> str:
    """Totals, then one line per top-level submodule, then the ops that were not counted."""
    lines = [f'input (H, W): {c.shape[0]} x {c.shape[1]}',
             f'params: {human(c.params)} ({c.params:,})',
             f'FLOPs: {human(c.flops)} ({c.flops:,}; multiply-adds)']
    lines += [f'  {name:<16} params {human(c.part_params[name]):>7}   FLOPs {human(c.part_flops[name]):>7}'
              for name in c.part_params if c.part_params[name] or c.part_flops[name]]
    # torch's own ops left out are element-wise or pooling (by convention, as published); others are opaque ops
    torch_ops = sorted(op.split('::')[-1] for op in c.not_counted if op.startswith('aten::'))
    opaque = sorted(op.split('::')[-1] for op in c.not_counted if not op.startswith('aten::'))
    if torch_ops:
        lines.append('not counted (element-wise or pooling, no multiply-adds): ' + ', '.join(torch_ops))
    if opaque:
        lines.append('not counted (opaque to the tracer): ' + ', '.join(opaque))
    return '\n'.join(lines)
