"""Does a whole-model checkpoint fit a model? The check ``CheckpointFitHook`` and ``tools/infer.py`` run."""
from typing import Dict, Sequence

from torch import Tensor, nn

from .checks import check_tensor_fits
from .layouts import WHOLE_MODEL_PREFIX


def check_checkpoint_fits(model: nn.Module, checkpoint: dict, source: str) -> None:
    """Raise a ``ValueError`` naming ``source`` when none of the checkpoint's tensors fits ``model``, or when a
    ConvNeXt backbone tensor has another shape (the file's likely arch is named).

    Args:
        model: The model the checkpoint is loaded into (not a wrapper).
        checkpoint: The checkpoint as read: a ``state_dict`` container or the state dict itself.
        source: The file's name, for the message.
    """
    state = checkpoint.get('state_dict', checkpoint)
    state = {key[len('module.'):] if key.startswith('module.') else key: value  # mmengine's default revise_keys
             for key, value in state.items() if isinstance(value, Tensor)}
    own = model.state_dict()
    fitting = [key for key, value in state.items() if key in own and own[key].shape == value.shape]
    if not fitting:
        raise ValueError(f'checkpoint {source}: none of its {len(state)} tensors fits the '
                         f'{type(model).__name__} of this config (its keys start {_first(state)}, the '
                         f"model's {_first(own)}); it is a checkpoint of another model")
    backbone = getattr(model, 'backbone', None)
    if hasattr(backbone, 'arch_depths') and hasattr(backbone, 'arch_channels'):  # ConvNeXt and ConvNeXtRoadmap
        _check_backbone(backbone, state, source)


def _first(keys: Sequence[str], count: int = 3) -> str:
    return ', '.join(list(keys)[:count]) or '(no tensors)'


def _check_backbone(backbone: nn.Module, state: Dict[str, Tensor], source: str) -> None:
    own = backbone.state_dict()
    file_backbone = {k[len(WHOLE_MODEL_PREFIX):]: v for k, v in state.items() if k.startswith(WHOLE_MODEL_PREFIX)}
    for name, value in file_backbone.items():
        if name in own:
            check_tensor_fits(source, WHOLE_MODEL_PREFIX + name, value, own[name], file_backbone, backbone,
                              setting='model.backbone.arch')
