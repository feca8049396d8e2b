"""The safe reader as mmengine's loader of local checkpoint files and http(s) URLs: what ``load_from``, ``resume``
and the test tools read through once ``convnext_dense`` is imported.

mmengine 0.10 reads local files with ``torch.load`` in its ``CheckpointLoader`` scheme ``''``. Under torch >= 2.6
(``weights_only=True`` by default) that refuses mmengine's own runner checkpoints, so ``--resume`` fails; with
``weights_only=False`` a crafted file runs code. Its ``http://`` / ``https://`` scheme downloads with torch hub,
whose ``load_state_dict_from_url`` unpickles with ``weights_only=False``. ``install_safe_checkpoint_loader`` replaces
these schemes with ``load_from_local_safe`` (a URL is read from the download cache, ``download``);
``uninstall_safe_checkpoint_loader`` puts mmengine's own back.
"""
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from mmengine.runner.checkpoint import CheckpointLoader, load_from_http, load_from_local

from ..checkpoint.checks import check_keys
from ..checkpoint.download import URL_SCHEMES
from ..checkpoint.hub import HF_SCHEME
from ..checkpoint.layouts import WRAPPER_PREFIX
from ..checkpoint.loading import map_whole_model, read_convnext_checkpoint
from ..checkpoint.model_layouts import ModelLayout, detect_model_layout
from ..utils.errors import CheckpointError
from ..utils.logging import print_log

LOCAL_SCHEME = ''  # mmengine's prefix for local paths: the scheme every path without 'http://', 's3://', ... takes


def load_from_local_safe(filename: str, map_location: Union[str, torch.device, None] = None) -> Any:
    """Read a local checkpoint (or a URL's copy in the download cache) safely; rename the ``backbone.*`` keys of a
    ConvNeXt of another layout to ours.

    The rest of the checkpoint (meta, optimizer, message hub) is returned unchanged for mmengine's runner.
    """
    checkpoint = read_convnext_checkpoint(filename, map_location)
    if not isinstance(checkpoint, Mapping):  # mmengine's runner would fail on it with an AttributeError
        raise CheckpointError(f'checkpoint {filename!r} holds a {type(checkpoint).__name__}, not a dict: not a state '
                              'dict or a checkpoint')
    holder = 'state_dict' if 'state_dict' in checkpoint else None  # where mmengine's runner looks
    found, inner = None, checkpoint.get('model')
    if holder is None and isinstance(inner, Mapping):
        found = _other_framework(inner)
        if found:  # a whole model in detectron2's container (detrex's files): moved to where mmengine's runner looks
            checkpoint = {'state_dict': inner, **{k: v for k, v in checkpoint.items() if k != 'model'}}
            holder = 'state_dict'
    if holder and not isinstance(checkpoint[holder], Mapping):
        raise CheckpointError(f"checkpoint {filename!r}: its 'state_dict' is a "
                              f"{type(checkpoint[holder]).__name__}, not a dict of tensors")
    state_dict = checkpoint[holder] if holder else checkpoint
    check_keys(state_dict, filename)
    found = found or _other_framework(state_dict)
    if found:  # a whole model of another framework: its names become the mmdet / mmseg model's
        model_layout, unwrapped = found
        state_dict = model_layout.convert(unwrapped)
        print_log(f'convnext_dense: {filename} is {model_layout.model} ({model_layout.name} layout); renamed its '
                  f'{len(state_dict)} tensors to the mmdet / mmseg names', logger='current')
        checkpoint = {**checkpoint, holder: state_dict} if holder else state_dict
    state_dict, layout = map_whole_model(state_dict)
    if layout is None:
        return checkpoint  # not a ConvNeXt backbone of a known layout
    if layout.name != 'official':  # official names are ours: only GRN shapes can have changed
        print_log(f'convnext_dense: renamed the backbone.* keys of {filename} from the {layout.name} layout to '
                  'convnext_dense.ConvNeXt names', logger='current')
    return {**checkpoint, holder: state_dict} if holder else state_dict


def _other_framework(state: Mapping) -> Optional[Tuple[ModelLayout, Dict[str, Any]]]:
    """The whole-model layout of ``state`` (``MODEL_LAYOUTS``) and its entries with DDP / torch.compile wrappers
    stripped, or None."""
    unwrapped = {WRAPPER_PREFIX.sub('', key): value for key, value in state.items()}
    layout = detect_model_layout(list(unwrapped))
    return (layout, unwrapped) if layout else None


def install_safe_checkpoint_loader() -> None:
    """Make mmengine read local checkpoint files, http(s) URLs and ``hf://`` names through ``load_from_local_safe``.
    Idempotent.

    ``import convnext_dense`` calls it. It covers the runner's ``load_from`` and ``resume`` and every tool that loads
    a local path or URL through ``mmengine.runner.load_checkpoint``.
    """
    CheckpointLoader.register_scheme(prefixes=(LOCAL_SCHEME, *URL_SCHEMES, HF_SCHEME), loader=load_from_local_safe,
                                     force=True)


def uninstall_safe_checkpoint_loader() -> None:
    """Give mmengine its own loaders back (``mmengine.runner.checkpoint.load_from_local`` and
    ``load_from_http``). Idempotent."""
    CheckpointLoader.register_scheme(prefixes=LOCAL_SCHEME, loader=load_from_local, force=True)
    CheckpointLoader.register_scheme(prefixes=URL_SCHEMES, loader=load_from_http, force=True)
    CheckpointLoader._schemes.pop(HF_SCHEME, None)  # mmengine has no loader of its own for hf:// names
