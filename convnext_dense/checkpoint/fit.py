"""Does a whole-model checkpoint fit a model? The check ``CheckpointFitHook`` and ``tools/infer.py`` run.

The file is read as the loader reads it (``loading.map_state_dict``: its container, DDP / torch.compile wrappers, the
backbone's layout and prefix), so a message can name the ConvNeXt arch the file holds beside the model's.
"""
from typing import Dict, Optional, Sequence

from torch import Tensor, nn

from ..specs.arch import describe_arch, infer_arch, likely_arch
from ..utils.errors import CheckpointError
from .checks import check_tensor_fits
from .layouts import WHOLE_MODEL_PREFIX, WRAPPER_PREFIX
from .loading import MappedCheckpoint, map_state_dict, state_dict_tensors
from .model_layouts import name_head_as_model


def loaded_state(checkpoint: dict) -> dict:
    """The dict mmengine loads into the model (``_load_checkpoint_to_model``): the ``state_dict`` container, else the
    checkpoint itself. mmengine reads no other container (an official file's ``model`` loads nothing)."""
    return checkpoint['state_dict'] if 'state_dict' in checkpoint else checkpoint


def name_heads_as_model(model: nn.Module, checkpoint: dict) -> None:
    """Rename, in ``checkpoint``, a Mask2Former head saved under the other toolkit's name (mmdet's ``panoptic_head``,
    mmseg's ``decode_head``; a transformers Mask2Former reads as mmdet's) to the name ``model`` uses."""
    loaded = loaded_state(checkpoint)
    renamed = name_head_as_model(loaded, model.state_dict().keys())
    if renamed is not None:
        loaded.clear()
        loaded.update(renamed)


def check_checkpoint_fits(model: nn.Module, checkpoint: dict, source: str) -> None:
    """Raise a ``CheckpointError`` naming ``source`` when none of the checkpoint's tensors fits ``model``, or when
    the file's ConvNeXt backbone is of another arch than the model's (the message names both).

    Args:
        model: The model the checkpoint is loaded into (not a wrapper).
        checkpoint: The checkpoint as read: a dict holding the state dict (``CONTAINERS``) or the state dict itself.
        source: The file's name, for the message.
    """
    tensors, container = state_dict_tensors(checkpoint, source)  # the file's, in any container: for the messages
    state = {key: value for key, value in loaded_state(checkpoint).items() if isinstance(value, Tensor)}  # loaded
    own = model.state_dict()
    backbone = getattr(model, 'backbone', None)
    is_convnext = hasattr(backbone, 'arch_depths') and hasattr(backbone, 'arch_channels')  # and ConvNeXtRoadmap
    ours = (f'ConvNeXt {describe_arch(backbone.arch_depths, backbone.arch_channels)}' if is_convnext
            else type(backbone).__name__ if backbone is not None else 'no backbone')
    mapped = _file_backbone(checkpoint, source)
    if not _fitting(state, own):
        whole = mapped is not None and mapped.prefix == WHOLE_MODEL_PREFIX and is_convnext
        fix = 'set model.backbone.arch to match the file' if whole else 'it is a checkpoint of another model'
        if container not in (None, 'state_dict') and _fitting(tensors, own):
            fix = (f"its tensors sit under {container!r}, which mmengine does not read (only 'state_dict', or a bare "
                   f"state dict): save them as {{'state_dict': checkpoint[{container!r}]}}")
        raise CheckpointError(f'checkpoint {source}: none of its {len(tensors)} tensors fits the '
                              f'{type(model).__name__} of this config (backbone {ours}); the file holds '
                              f'{_describe_file(mapped)} (its keys start {_first(tensors)}, the model\'s '
                              f'{_first(own)}); {fix}')
    if is_convnext and mapped is not None and mapped.prefix == WHOLE_MODEL_PREFIX:
        _check_backbone(backbone, mapped.state_dict, source, ours)


def _file_backbone(checkpoint: dict, source: str) -> Optional[MappedCheckpoint]:
    """The file's ConvNeXt backbone under our names, or None if it holds none (or two towers)."""
    try:
        mapped = map_state_dict(checkpoint, source)
    except CheckpointError:
        return None
    return mapped if mapped.layout is not None and mapped.state_dict else None


def _describe_file(mapped: Optional[MappedCheckpoint]) -> str:
    if mapped is None:
        return 'no ConvNeXt backbone'
    arch = likely_arch(mapped.state_dict)
    if mapped.prefix == WHOLE_MODEL_PREFIX:
        return f'a model with a {arch} backbone ({mapped.layout.name} layout)'
    return (f'a {arch} backbone alone ({mapped.layout.name} layout, prefix {mapped.prefix!r}, no neck or heads): '
            "load it as the backbone's init_cfg checkpoint, or convert it with tools/convert_checkpoint.py "
            '--whole-model')


def _fitting(state: Dict[str, Tensor], own: Dict[str, Tensor]) -> bool:
    """Some tensor of ``state``, wrappers stripped (as mmengine's ``revise_keys``), has a name and shape of ``own``."""
    for key, value in state.items():
        mine = own.get(WRAPPER_PREFIX.sub('', key))
        if mine is not None and mine.shape == value.shape:
            return True
    return False


def _first(keys: Sequence[str], count: int = 3) -> str:
    return ', '.join(list(keys)[:count]) or '(no tensors)'


def _check_backbone(backbone: nn.Module, file_backbone: Dict[str, Tensor], source: str, ours: str) -> None:
    """Each backbone tensor of the file has the model's shape, and the file's stages have the model's depths."""
    own = backbone.state_dict()
    for name, value in file_backbone.items():
        if name in own:
            check_tensor_fits(source, WHOLE_MODEL_PREFIX + name, value, own[name], file_backbone, backbone,
                              setting='model.backbone.arch')
    try:
        arch = infer_arch(file_backbone)
    except ValueError:  # a partial backbone: the tensors it has fit
        return
    stages = min(len(arch['depths']), len(backbone.arch_depths))
    if tuple(arch['depths'][:stages]) != tuple(backbone.arch_depths[:stages]):  # same channels, other depths
        deeper = sum(arch['depths'][:stages]) > sum(backbone.arch_depths[:stages])
        lost = ("the file's blocks the model lacks would be ignored" if deeper
                else "the model's blocks the file lacks would keep their initial weights")
        raise CheckpointError(f'checkpoint {source}: its backbone is {likely_arch(file_backbone)}, the model\'s '
                              f'{ours}: {lost}; set model.backbone.arch to match the file')
