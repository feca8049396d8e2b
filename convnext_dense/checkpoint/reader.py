"""Reading checkpoint files without running code stored in them.

Files are read with ``torch.load(weights_only=True)`` plus an allow-list of a few harmless globals, or with
safetensors; a URL is read from its copy in the download cache (``download``). Nothing here knows about ConvNeXt.

What reads, with PyTorch alone: plain tensors and containers (a state dict, or a dict holding one), ``.safetensors``
files, and numpy arrays, dtypes and scalars in files that need nothing else. Where mmengine can be imported, the
allow-list also takes the ``HistoryBuffer`` objects of an mmengine runner checkpoint's message hub (imported on the
first read), so such a file (``--resume``, ``load_from``) reads too; without mmengine that file is refused with a
ValueError naming the global. Nothing outside the allow-list is ever unpickled.

The allow-list needs torch >= 2.6, the first to take (global, name) pairs in ``torch.serialization.safe_globals``
(numpy keeps its reconstructors under two module names, and ``getattr`` is allowed only for HistoryBuffer's
statistics). With torch 2.4 and 2.5 ``weights_only=True`` reads plain tensors and containers only: published
weights and safetensors load, numpy arrays and runner checkpoints are refused with an error saying so.
"""
import functools
import os
import pickle
import re
from contextlib import nullcontext
from typing import Any, Callable, ContextManager, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from safetensors.torch import load_file as load_safetensors

from ..utils.errors import CheckpointError, MissingFileError
from . import hf_folder
from .download import URL_SCHEMES, resolve
from .hub import HF_SCHEME

_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')  # HistoryBuffer's default statistics methods


@functools.lru_cache(maxsize=None)
def _history_buffer() -> Optional[type]:
    """mmengine's ``HistoryBuffer`` where mmengine can be imported, else None (a runner checkpoint is refused)."""
    try:
        from mmengine.logging.history_buffer import HistoryBuffer  # lazy: the core needs no mmengine
    except ImportError:
        return None
    return HistoryBuffer


def _history_buffer_method(owner: type, name: str) -> Callable:
    """``getattr`` as the unpickler may call it: only for the statistics methods a ``HistoryBuffer`` pickles.

    A saved ``HistoryBuffer`` keeps its statistics methods, which pickle as ``getattr(HistoryBuffer, 'mean')``. A
    general ``getattr`` would hand a crafted file any attribute of any allowed object, so only these are served.
    """
    history_buffer = _history_buffer()
    if history_buffer is None or owner is not history_buffer or not (
            name in _HISTORY_BUFFER_STATISTICS or name in history_buffer._statistics_methods):
        raise pickle.UnpicklingError(f'getattr({owner!r}, {name!r}) is not allowed; only HistoryBuffer statistics '
                                     f'methods {_HISTORY_BUFFER_STATISTICS} are')
    return getattr(owner, name)


def _safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The globals an mmengine runner checkpoint needs beyond plain tensors (found by saving one with torch 2.13);
    the numpy ones without mmengine.

    The message hub holds ``HistoryBuffer`` objects (numpy arrays inside) and numpy scalars. numpy 2 pickles its
    reconstructors under ``numpy._core``, numpy 1 under ``numpy.core``; both names map to the same functions.
    """
    reconstruct = np.zeros(1).__reduce__()[0]  # the array reconstructor, whatever module numpy keeps it in
    scalar = np.float64(0).__reduce__()[0]
    allowed: List[Union[Callable, Tuple[Callable, str]]] = [np.ndarray, np.dtype]
    history_buffer = _history_buffer()
    if history_buffer is not None:
        allowed += [history_buffer, (_history_buffer_method, 'builtins.getattr')]
    for package in ('numpy.core', 'numpy._core'):
        allowed += [(reconstruct, f'{package}.multiarray._reconstruct'), (scalar, f'{package}.multiarray.scalar')]
    # Unpickling a dtype builds an instance of its class: float64 and int64 in HistoryBuffer and runtime info;
    # float32 and int32 where numpy's defaults or logged values differ by platform.
    allowed += [type(np.dtype(name)) for name in ('float64', 'int64', 'float32', 'int32')]
    return allowed


# (global, name) pairs: torch >= 2.6 (module docstring). TorchVersion compares as a version, not as a string.
ALLOW_LIST_SUPPORTED = torch.__version__ >= '2.6'


def _allow_listed() -> ContextManager:
    return torch.serialization.safe_globals(_safe_globals()) if ALLOW_LIST_SUPPORTED else nullcontext()


def read_checkpoint(path: Union[str, os.PathLike], map_location: Union[str, torch.device, None] = 'cpu') -> Any:
    """Read a checkpoint file without running code stored in it.

    ``.safetensors`` files are read with safetensors (onto the CPU); anything else with
    ``torch.load(weights_only=True)`` plus the allow-list of ``_safe_globals``.

    Args:
        path: Local file path, a folder written by transformers' ``save_pretrained`` (``hf_folder``), an http(s)
            URL or an ``hf://ORG/REPO[/FILE]`` name: its copy in the download cache
            (``download.resolve``).
        map_location: Passed to ``torch.load``. Default: 'cpu'.

    Returns:
        The object stored in the file (a state dict, or a dict holding one).

    Raises:
        FileNotFoundError: ``path`` does not exist (for a URL: see ``download.download``).
        OSError: A URL could not be downloaded.
        ValueError: ``path`` is a URL of another scheme or not a regular file (a directory), a download's hash
            differs, or the file is truncated, corrupt, not a checkpoint, or needs unpickling of anything beyond
            tensors, containers and the allow-listed globals. The message is one line naming the file, whatever the
            parser met.
    """
    path = os.path.expanduser(os.fspath(resolve(path)))
    if '://' in path:
        raise CheckpointError(f'checkpoint {path!r} is a URL of a scheme convnext_dense does not read: pass a local '
                              f'path or a name starting with {", ".join(URL_SCHEMES)} or {HF_SCHEME}')
    if not os.path.exists(path):
        raise MissingFileError(f'checkpoint file {path!r} does not exist')
    if os.path.isdir(path) and hf_folder.holds_weights(path):
        return {key: value for file in hf_folder.weight_files(path) for key, value in read_safetensors(file).items()}
    if not os.path.isfile(path):
        kind = 'a directory' if os.path.isdir(path) else 'not a regular file'
        raise CheckpointError(f'checkpoint {path!r} is {kind}; pass a checkpoint file, or a folder holding '
                              f'{hf_folder.WEIGHTS} or {hf_folder.INDEX} (transformers\' save_pretrained)')
    if path.endswith('.safetensors'):
        return read_safetensors(path)
    try:
        with _allow_listed():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message wraps the refused global in advice to allow-list it; name only the global.
        refused = re.search(r'GLOBAL ([\w.]+)', str(e))
        reason = f'unpickling it would call {refused.group(1)}' if refused else str(e).splitlines()[0].strip()
        if not ALLOW_LIST_SUPPORTED:
            hint = '; torch >= 2.6 also reads mmengine runner checkpoints safely'
        elif refused and refused.group(1).startswith('mmengine.') and _history_buffer() is None:
            hint = '; an mmengine runner checkpoint (its message hub) reads where mmengine is installed'
        else:
            hint = ''
        raise CheckpointError(f'refusing to read {path!r}: it holds more than weights ({reason}). convnext_dense '
                              'reads checkpoints with torch.load(weights_only=True), so code in a file never runs; if '
                              'you trust the file, re-save its state dict (tensors only) or convert it to '
                              f'safetensors{hint}') from None
    except Exception as e:  # torch.load parses an untrusted file: struct, assertion, memory errors all mean a bad file
        raise CheckpointError(f'cannot read checkpoint {path!r}: {_one_line(e)} (the file is truncated, corrupt or '
                              'not a PyTorch checkpoint)') from None


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``, on the CPU.

    Raises:
        ValueError: The file is truncated or not safetensors (one line naming it).
    """
    try:
        return load_safetensors(path, device='cpu')
    except Exception as e:  # a parser of an untrusted file: any failure means the file is bad
        raise CheckpointError(f'cannot read safetensors file {path!r}: {_one_line(e)} (truncated or not a '
                              'safetensors file)') from None


def _one_line(error: Exception) -> str:
    """``Type: first line of the message``: torch's and pybind's messages run over several lines."""
    lines = str(error).strip().splitlines()
    return f'{type(error).__name__}: {lines[0].strip() if lines else ""}'
