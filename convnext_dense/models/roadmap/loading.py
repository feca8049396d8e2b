"""Loading a checkpoint into a roadmap backbone: at ``separate_downsampling`` every ConvNeXt layout (it is ConvNeXt);
before it, files with the step's own names (mmdet's ResNet names: torchvision's and mmdet's ImageNet ResNet-50 files
at ``resnet``, a whole mmdet / mmseg model with its ``backbone.`` prefix, or a file saved from the step itself).

The file is read safely (``checkpoint.reader``); a shape that differs is an error naming the key, both shapes and the
step; a file of which no tensor loads is an error; what was loaded, missing and ignored is logged.
"""
import os
from typing import Optional, Union

import torch
from torch import nn

from ...checkpoint.layouts import WHOLE_MODEL_PREFIX, WRAPPER_PREFIX
from ...checkpoint.loading import abridge, load_backbone_checkpoint, pick_prefix, state_dict_tensors
from ...checkpoint.reader import read_checkpoint
from ...utils.errors import CheckpointError
from ...utils.logging import print_log


def load_roadmap_checkpoint(model: nn.Module, path: Union[str, os.PathLike], prefix: Optional[str] = None,
                            map_location: Union[str, torch.device, None] = 'cpu') -> None:
    """Load ``path`` into the ``ConvNeXtRoadmap`` ``model`` and log what was loaded.

    Args:
        model: The roadmap backbone.
        path: Local file or http(s) URL.
        prefix: Prefix of the backbone keys in the file; '' for none; None strips ``backbone.`` when the file's
            keys have it (``checkpoint.loading.pick_prefix``, as for ConvNeXt). Default: None.
        map_location: Passed to ``torch.load``. Default: 'cpu'.

    Raises:
        ValueError: A tensor's shape differs from the model's, ``prefix`` matches no key, or no tensor of the file
            fits the model.
    """
    if model.design.separate_downsampling:
        load_backbone_checkpoint(model, path, prefix=prefix, map_location=map_location)
        return
    path = os.fspath(path)
    checkpoint = read_checkpoint(path, map_location)
    tensors = {WRAPPER_PREFIX.sub('', k): v for k, v in state_dict_tensors(checkpoint, path)[0].items()}
    prefix = pick_prefix(list(tensors), prefix, path, auto=(WHOLE_MODEL_PREFIX,))
    inside = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    own = model.state_dict()
    to_load = {k: v for k, v in inside.items() if k in own}
    if not to_load:
        raise CheckpointError(f'no tensor of {path!r} (prefix {prefix!r}) fits roadmap step {model.step!r} '
                              f'({model.regime}): its keys begin {abridge(list(inside) or list(tensors))}; the step\'s '
                              f'begin {abridge(list(own))}')
    for key, tensor in to_load.items():
        if tensor.shape != own[key].shape:
            raise CheckpointError(f'checkpoint {path!r}: {key} has shape {tuple(tensor.shape)} in the file but '
                                  f'{tuple(own[key].shape)} in roadmap step {model.step!r} ({model.regime}): the file '
                                  'holds another step or regime')
    model.load_state_dict(to_load, strict=False)
    missing = [k for k in own if k not in to_load]
    ignored = [k for k in inside if k not in own]
    lines = [f'convnext_dense: loaded {len(to_load)}/{len(own)} tensors of roadmap step {model.step!r} '
             f'({model.regime}) from {path}' + (f", prefix '{prefix}'" if prefix else '')]
    if missing:
        lines.append(f'  missing, kept init ({len(missing)}): {abridge(missing)}')
    if ignored:
        lines.append(f'  not in this backbone, ignored ({len(ignored)}): {abridge(ignored)}')
    print_log('\n'.join(lines), logger='current')

