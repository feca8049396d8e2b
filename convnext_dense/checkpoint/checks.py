"""What a file's tensors must be to load into a ConvNeXt: one ConvNeXt tower, str keys, the model's shapes,
floating-point weights.

The errors name the file and the key; a shape that differs also names the arch the file holds.
"""
from typing import Dict, Mapping, Sequence

from torch import Tensor, nn

from ..specs.arch import describe_arch, likely_arch
from ..utils.errors import CheckpointError
from .layouts import LAYOUTS


def shape_mismatch(source: str, key: str, file_shape: Sequence[int], model_shape: Sequence[int],
                   file_backbone: Mapping[str, Tensor], model: nn.Module, setting: str = 'arch') -> ValueError:
    """The error for a backbone tensor whose shape differs between a file and a ConvNeXt model.

    Args:
        source: The file.
        key: The tensor's name as the reader knows it.
        file_shape: Its shape in the file.
        model_shape: Its shape in the model.
        file_backbone: The file's backbone tensors under our names (to name the arch the file holds).
        model: The ConvNeXt backbone.
        setting: The option that sets the model's arch, as the user writes it. Default: 'arch'.
    """
    return CheckpointError(f'checkpoint {source}: {key} has shape {tuple(file_shape)} in the file but '
                           f'{tuple(model_shape)} in the model; the file holds {likely_arch(file_backbone)}, the '
                           f'model ConvNeXt {describe_arch(model.arch_depths, model.arch_channels)}: set {setting} to '
                           'match the file')


def check_keys(state_dict: Mapping, path: str) -> None:
    """Raise a ValueError naming the file if a key of ``state_dict`` is not a str (no state dict has one)."""
    bad = next((key for key in state_dict if not isinstance(key, str)), None)
    if bad is not None:
        raise CheckpointError(f'checkpoint {path!r}: its state dict has the key {bad!r} ({type(bad).__name__}); a '
                              'state dict maps str names to tensors')


def check_tensor_fits(source: str, key: str, tensor: Tensor, own: Tensor, file_backbone: Mapping[str, Tensor],
                      model: nn.Module, setting: str = 'arch') -> None:
    """Raise a ValueError if a file's backbone tensor cannot be copied into the model's ``own``.

    A shape that differs is ``shape_mismatch``; a tensor that is not of a real floating-point dtype where the model's
    is (an integer, bool or complex tensor) holds no weights and would be cast silently. fp16 / bf16 / fp64 files
    load, converted.
    """
    if tensor.shape != own.shape:
        raise shape_mismatch(source, key, tensor.shape, own.shape, file_backbone, model, setting)
    if own.is_floating_point() and not tensor.is_floating_point():
        raise CheckpointError(f'checkpoint {source}: {key} is a {tensor.dtype} tensor in the file but {own.dtype} in '
                              'the model; weights are floating-point tensors: the file is corrupt or not a ConvNeXt '
                              'checkpoint')


def check_one_tower(keys: Sequence[str], prefixes: Sequence[str], path: str) -> None:
    """Raise if ``keys`` hold the stems of two ConvNeXt towers (two models, or one file read as two layouts)."""
    present = set(keys)
    stems: Dict[str, str] = {}
    for prefix in prefixes:
        for layout in LAYOUTS:
            stems.setdefault(prefix + layout.stem_key, layout.name)
    towers = [f'{key!r} ({name} layout)' for key, name in stems.items() if key in present]
    if len(towers) > 1:
        raise CheckpointError(f'checkpoint {path!r} holds {len(towers)} ConvNeXt towers, stems {" and ".join(towers)}; '
                              'pass the prefix of the one to load (prefix= or the init_cfg\'s prefix)')
