"""ONNX export of the ConvNeXt backbone with dynamic batch, height and width, and a check against PyTorch.

The graph comes from torch's ``torch.export``-based ONNX exporter (the default since torch 2.9; it needs
``onnxscript``). Opset 17 added ``LayerNormalization``, so from 17 on every norm is one op that keeps the backbone's
epsilon (its ``norm_eps``: the arch's, ``specs.arch.arch_norm_eps``, unless the config sets one) instead of a
decomposition; the exporter's own opset, 18, is the default. Outputs are named ``stage{i}`` for each returned stage,
in the backbone's ``out_indices`` order. The check runs the file with onnxruntime on the CPU.
"""
import copy
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..checkpoint.loading import load_backbone_checkpoint
from ..models.backbone import ConvNeXt
from ..specs.arch import ARCH_SETTINGS
from ..utils.errors import ConfigError, ConfigTypeError
from .cli import build_model, load_config

MIN_OPSET = 17  # the first opset with LayerNormalization
DEFAULT_OPSET = 18
PROTOBUF_LIMIT = 2**31 - 1  # bytes of one ONNX protobuf file; bigger models keep their weights in FILE.onnx.data


def build_backbone(config_or_arch: str, checkpoint: Optional[str] = None) -> ConvNeXt:
    """The backbone a config's ``model.backbone`` describes, or ``ConvNeXt(arch)`` for an arch name, in eval mode.

    Args:
        config_or_arch: A config file (detection or segmentation) or an arch name of ``ARCH_SETTINGS``.
        checkpoint: Weights to load: any layout ``load_backbone_checkpoint`` reads, whole detector/segmentor files
            included. Default: None (PyTorch's random initialisation; a config's Pretrained init_cfg is not read).

    Raises:
        ValueError: ``config_or_arch`` is neither an existing file nor a known arch.
        TypeError: the config's backbone is not ``convnext_dense.ConvNeXt``.
    """
    if os.path.isfile(config_or_arch):
        backbone = build_model(load_config(config_or_arch), 'backbone')
        if not isinstance(backbone, ConvNeXt):
            raise ConfigTypeError(f'{config_or_arch}: model.backbone is {type(backbone).__name__}; only '
                                  'convnext_dense.ConvNeXt backbones are exported')
    elif config_or_arch in ARCH_SETTINGS:
        backbone = ConvNeXt(config_or_arch)
    else:
        raise ConfigError(f'{config_or_arch!r} is neither a config file nor a ConvNeXt arch; archs: '
                          f'{", ".join(ARCH_SETTINGS)}')
    if checkpoint is not None:
        load_backbone_checkpoint(backbone, checkpoint)
    return backbone.eval()


def output_names(backbone: ConvNeXt) -> List[str]:
    """``stage{i}`` for each stage the backbone returns."""
    return [f'stage{i}' for i in backbone.out_indices]


def export_dynamic(module: torch.nn.Module, example: torch.Tensor, out: str, output_names: Sequence[str],
                   min_size: int, opset: int = DEFAULT_OPSET, external_data: bool = False) -> None:
    """Export ``module`` (one input, named ``image``) with dynamic batch, height and width >= ``min_size``.

    Args:
        module: The module to export, in eval mode.
        example: Its traced input, ``2 x 3 x H x W``: torch.export treats a dimension of size 1 as a constant.
        out: The ``.onnx`` file to write.
        output_names: The graph's output names, in order.
        min_size: The smallest height and width the graph accepts.
        opset: ONNX opset, at least 17. Default: 18.
        external_data: Keep the weights in ``out + '.data'`` (past protobuf's 2 GiB). Default: False.
    """
    if opset < MIN_OPSET:
        raise ConfigError(f'opset={opset}: LayerNormalization needs opset >= {MIN_OPSET}')
    if min(example.shape[-2:]) < min_size:
        raise ConfigError(f'shape={tuple(example.shape[-2:])}: height and width must be at least {min_size}')
    dims = {0: torch.export.Dim('batch'), 2: torch.export.Dim('height', min=min_size),
            3: torch.export.Dim('width', min=min_size)}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.onnx.export(module, (example,), out, dynamo=True, opset_version=opset, input_names=['image'],
                      output_names=list(output_names), dynamic_shapes=(dims,), external_data=external_data)


def export_onnx(backbone: ConvNeXt, out: str, shape: Tuple[int, int] = (512, 512),
                opset: int = DEFAULT_OPSET, half: bool = False) -> List[str]:
    """Export ``backbone`` to ONNX with dynamic batch, height and width.

    Args:
        backbone: The backbone (put in eval mode).
        out: The ``.onnx`` file to write.
        shape: (H, W) of the example input that is traced; the graph accepts any H, W >= the backbone's
            ``min_input_size``. Default: (512, 512).
        opset: ONNX opset, at least 17. Default: 18.
        half: Export a float16 graph (float16 weights, input and outputs) from a float16 copy of ``backbone``.
            GRN's norm (ConvNeXt V2) stays accumulated in float32 and LayerNormalization computes in float32
            (its ``stash_type``), so runtimes that run float16 ops natively do not overflow on large maps.
            Default: False.

    Returns:
        The files written: ``out``, and ``out + '.data'`` when the weights exceed protobuf's 2 GiB.
    """
    example = torch.randn(2, 3, *shape, dtype=torch.float16 if half else torch.float32)
    backbone = copy.deepcopy(backbone).half() if half else backbone
    external = sum(p.numel() * p.element_size() for p in backbone.parameters()) > PROTOBUF_LIMIT
    export_dynamic(backbone.eval(), example, out, output_names(backbone), backbone.min_input_size, opset, external)
    return [out, out + '.data'] if external else [out]


def verify_onnx(backbone: ConvNeXt, path: str, shapes: Sequence[Tuple[int, int]], batch: int = 1,
                seed: int = 0) -> Dict[Tuple[int, int], float]:
    """Largest absolute difference between onnxruntime's (CPU) and PyTorch's outputs, per input (H, W).

    A float16 graph gets the input in float16 and is compared with ``backbone`` as it is (float32).

    Args:
        backbone: The exported backbone.
        path: Its ONNX file.
        shapes: Input sizes (H, W) to compare at; two different ones show that height and width are dynamic.
        batch: Images per input. Default: 1.
        seed: Seed of the random inputs. Default: 0.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    half = session.get_inputs()[0].type == 'tensor(float16)'
    gen = torch.Generator().manual_seed(seed)
    diffs = {}
    for height, width in shapes:
        image = torch.randn(batch, 3, height, width, generator=gen)
        with torch.no_grad():
            expected = backbone.eval()(image)
        feed = image.numpy().astype(np.float16 if half else np.float32)
        got = session.run(output_names(backbone), {'image': feed})
        diffs[(height, width)] = max(float(np.abs(g.astype(np.float32) - e.numpy()).max())
                                     for g, e in zip(got, expected))
    return diffs


def default_verify_shapes(shape: Tuple[int, int]) -> List[Tuple[int, int]]:
    """The export size and a larger one of another aspect ratio whose sides are not multiples of 32."""
    height, width = shape
    return [(height, width), (height + 40, width + 72)]
