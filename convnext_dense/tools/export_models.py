"""ONNX export of a whole UperNet segmentor and of a detector's backbone + FPN, with dynamic batch, height and width,
and a check with onnxruntime on a real photo at several sizes.

Both graphs take raw RGB images, ``N x 3 x H x W`` float32 in 0..255: the config's normalisation (and the RGB -> BGR
flip, for a config without ``bgr_to_rgb``) is inside the graph. The segmentor runs in whole-image mode (the ADE20K
configs test with a sliding window; whole-image inference of the same weights differs from that a little): outputs
``scores`` (``N x C x H x W`` logits, before softmax, at the input resolution) and ``labels`` (``N x H x W`` int64,
their argmax). The detector graph outputs the neck's maps, ``fpn0`` .. (stride 4, 8, ...); its RoI heads need mmcv's
custom ops (RoIAlign, NMS) and are not exported.

``nn.AdaptiveAvgPool2d`` (UperNet's pyramid pooling at scales 1, 2, 3, 6) is exported by torch with its bins fixed
at the traced size: right at that size only (torch 2.13: onnxruntime fails at other sizes with an invalid GatherND
index). ``export_safe`` swaps each one for
``AdaptiveAvgPool2dAnySize``, the same bins computed from the input's size as two averaging matrices.
"""
import copy
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint.fit import check_checkpoint_fits
from ..utils.errors import ConfigError, MissingFileError
from .cli import build_model, load_config
from .export_onnx import DEFAULT_OPSET, export_dynamic

PHOTO = Path(matplotlib.get_data_path()) / 'sample_data' / 'grace_hopper.jpg'  # shipped with matplotlib
FP32_TOLERANCE = 1e-4  # largest absolute difference accepted between onnxruntime and PyTorch, fp32
LABEL_AGREEMENT = 0.999  # smallest fraction of pixels whose label must agree


def _bins(size: Tensor, bins: int) -> Tensor:
    """``bins x size`` matrix that averages each of adaptive average pooling's bins: bin i covers
    ``[floor(i * size / bins), ceil((i + 1) * size / bins))``, as in PyTorch."""
    index = torch.arange(bins, device=size.device).unsqueeze(1)  # bins x 1
    start = torch.div(index * size, bins, rounding_mode='floor')
    end = torch.div((index + 1) * size + bins - 1, bins, rounding_mode='floor')
    pixel = torch.arange(size, device=size.device).unsqueeze(0)  # 1 x size
    inside = ((pixel >= start) & (pixel < end)).float()
    return inside / (end - start).float()


class AdaptiveAvgPool2dAnySize(nn.Module):
    """``nn.AdaptiveAvgPool2d(output_size)`` whose exported graph is right at every input size."""

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)

    def forward(self, x: Tensor) -> Tensor:
        height, width = self.output_size
        rows = _bins(torch.tensor(x.shape[2]), height)  # height x H
        cols = _bins(torch.tensor(x.shape[3]), width)  # width x W
        return rows @ x @ cols.t()  # (h x H) @ (N x C x H x W) @ (W x w) = N x C x h x w


def export_safe(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every ``nn.AdaptiveAvgPool2d`` replaced by ``AdaptiveAvgPool2dAnySize``."""
    module = copy.deepcopy(module)
    for name, child in list(module.named_modules()):
        if isinstance(child, nn.AdaptiveAvgPool2d):
            parent_name, _, attr = name.rpartition('.')
            setattr(module.get_submodule(parent_name), attr, AdaptiveAvgPool2dAnySize(child.output_size))
    return module


class RawRGB(nn.Module):
    """What the model's data preprocessor does to a batch: raw RGB 0..255 in, the model's input out."""

    def __init__(self, preprocessor: nn.Module) -> None:
        super().__init__()
        self.to_bgr = not getattr(preprocessor, '_channel_conversion', True)  # the model was trained on BGR
        self.register_buffer('mean', preprocessor.mean.reshape(1, -1, 1, 1).clone())
        self.register_buffer('std', preprocessor.std.reshape(1, -1, 1, 1).clone())

    def forward(self, image: Tensor) -> Tensor:
        if self.to_bgr:
            image = image.flip(1)
        return (image - self.mean) / self.std


class SegmentorGraph(nn.Module):
    """An mmseg encoder-decoder in whole-image mode: raw RGB in, ``scores`` and ``labels`` at the input size out."""

    output_names = ('scores', 'labels')

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.normalize = RawRGB(segmentor.data_preprocessor)
        self.backbone = segmentor.backbone
        self.neck = getattr(segmentor, 'neck', None)
        self.decode_head = segmentor.decode_head

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor]:
        features = self.backbone(self.normalize(image))
        if self.neck is not None:
            features = self.neck(features)
        scores = self.decode_head(features)  # N x C x H/4 x W/4
        scores = F.interpolate(scores, size=image.shape[2:], mode='bilinear',
                               align_corners=self.decode_head.align_corners)  # N x C x H x W, as mmseg's predict
        return scores, scores.argmax(1)


class NeckGraph(nn.Module):
    """A detector's backbone and neck: raw RGB in, the neck's maps (``fpn0``, ...) out."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.normalize = RawRGB(detector.data_preprocessor)
        self.backbone = detector.backbone
        self.neck = detector.neck

    def forward(self, image: Tensor) -> Tuple[Tensor, ...]:
        return tuple(self.neck(self.backbone(self.normalize(image))))


def graph_for(model: nn.Module, scope: str) -> nn.Module:
    """The exported part of a built model: ``SegmentorGraph`` for mmseg, ``NeckGraph`` for mmdet."""
    if scope == 'mmseg':
        return SegmentorGraph(model).eval()
    if getattr(model, 'neck', None) is None:
        raise ConfigError(f'{type(model).__name__} has no neck; the detector export is its backbone + neck')
    return NeckGraph(model).eval()


def build_graph(config: str, checkpoint: Optional[str] = None) -> nn.Module:
    """``graph_for`` the model of ``config`` (detection or segmentation), with the weights of ``checkpoint`` (a whole
    detector / segmentor file, e.g. from tools/train.py; refused when it does not fit) or random ones."""
    from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

    cfg = load_config(config)
    model = build_model(cfg)
    if checkpoint is not None:
        state = _load_checkpoint(checkpoint, map_location='cpu')  # through the safe reader
        check_checkpoint_fits(model, state, checkpoint)
        _load_checkpoint_to_model(model, state)
    return graph_for(model.eval(), cfg.default_scope)


def output_names(graph: nn.Module) -> List[str]:
    """The names of the graph's outputs, in order."""
    if isinstance(graph, SegmentorGraph):
        return list(graph.output_names)
    with torch.no_grad():
        count = len(graph(torch.zeros(1, 3, 64, 64)))
    return [f'fpn{i}' for i in range(count)]


def export_graph(graph: nn.Module, out: str, shape: Tuple[int, int] = (512, 512), opset: int = DEFAULT_OPSET,
                 min_size: int = 64) -> List[str]:
    """Export ``graph`` (from ``graph_for``) with dynamic batch, height and width, its pooling made export-safe.

    Args:
        graph: The module to export.
        out: The ``.onnx`` file to write.
        shape: (H, W) of the traced example. Default: (512, 512).
        opset: ONNX opset, at least 17. Default: 18.
        min_size: The smallest height and width the graph accepts. Default: 64 (the coarsest map of a four-stage
            backbone at least 2 x 2: at 1 x 1 torch.export specialises the graph's reshapes).

    Returns:
        The output names.
    """
    names = output_names(graph)
    example = torch.rand(2, 3, *shape) * 255
    export_dynamic(export_safe(graph).eval(), example, out, names, min_size, opset)
    return names


def photo(shape: Tuple[int, int], path: Path = PHOTO) -> Tensor:
    """The photo resized to ``shape`` (H, W): a ``1 x 3 x H x W`` float32 RGB tensor in 0..255."""
    image = cv2.imread(str(path))
    if image is None:
        raise MissingFileError(f'{path} is not a readable image')
    image = cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().unsqueeze(0)


def verify_graph(graph: nn.Module, path: str, shapes: Sequence[Tuple[int, int]],
                 image: Path = PHOTO) -> Dict[Tuple[int, int], Dict[str, float]]:
    """Compare onnxruntime (CPU) running ``path`` with PyTorch running ``graph`` (with its own pooling) on ``image``
    resized to each shape: ``{(H, W): {'max_abs_diff': ..., 'labels_agree': ...}}`` (the largest absolute difference
    over the float outputs; the fraction of equal labels, segmentor only)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    names = output_names(graph)
    results = {}
    for shape in shapes:
        inputs = photo(shape, image)
        with torch.no_grad():
            expected = [t.numpy() for t in graph.eval()(inputs)]
        got = session.run(names, {'image': inputs.numpy()})
        result = dict(max_abs_diff=max(float(np.abs(g - e).max()) for g, e, name in zip(got, expected, names)
                                       if name != 'labels'))
        if 'labels' in names:
            index = names.index('labels')
            result['labels_agree'] = float((got[index] == expected[index]).mean())
        results[tuple(shape)] = result
    return results


def verify_shapes(shape: Tuple[int, int], min_size: int = 64) -> List[Tuple[int, int]]:
    """The export size, a larger one and a smaller one of other aspect ratios, neither a multiple of 32."""
    height, width = shape
    smaller = (max(min_size, height * 3 // 4 + 5), max(min_size, width // 2 + 9))
    return [(height, width), (height + 40, width + 72), smaller]


def failures(results: Dict[Tuple[int, int], Dict[str, float]]) -> List[str]:
    """The sizes whose comparison is outside ``FP32_TOLERANCE`` / ``LABEL_AGREEMENT``, as lines."""
    return [f'{h} x {w}: {r}' for (h, w), r in results.items()
            if r['max_abs_diff'] > FP32_TOLERANCE or r.get('labels_agree', 1.0) < LABEL_AGREEMENT]
