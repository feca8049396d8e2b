"""Folders written by Hugging Face's ``save_pretrained``: ``model.safetensors``, or shards named by
``model.safetensors.index.json``, beside ``config.json``. Their weights read as one state dict wherever a checkpoint
file goes. Only safetensors are read (no code in them to run).
"""
import json
import os
from typing import Dict

from safetensors.torch import load_file
from torch import Tensor

from ..utils.errors import CheckpointError, MissingFileError

WEIGHTS = 'model.safetensors'
INDEX = 'model.safetensors.index.json'


def holds_weights(path: str) -> bool:
    """Whether the directory ``path`` holds a ``save_pretrained`` model's safetensors."""
    return any(os.path.isfile(os.path.join(path, name)) for name in (WEIGHTS, INDEX))


def read_folder(path: str) -> Dict[str, Tensor]:
    """The state dict of a ``save_pretrained`` folder: ``model.safetensors``, or every shard of its index, merged.

    Raises:
        ValueError: A file is not safetensors, or the index is malformed.
        FileNotFoundError: The index names a shard that is missing.
    """
    if os.path.isfile(os.path.join(path, WEIGHTS)):
        files = [WEIGHTS]
    else:
        try:
            with open(os.path.join(path, INDEX), encoding='utf-8') as f:
                files = sorted(set(json.load(f)['weight_map'].values()))
        except (ValueError, KeyError, AttributeError, TypeError) as e:
            raise CheckpointError(f'{os.path.join(path, INDEX)} is no safetensors index (a "weight_map" of key -> '
                             f'file): {type(e).__name__}: {e}') from None
    state: Dict[str, Tensor] = {}
    for name in files:
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            raise MissingFileError(f'{os.path.join(path, INDEX)} names {name}, which is not in {path}')
        try:
            state.update(load_file(file, device='cpu'))
        except Exception as e:  # a parser of an untrusted file: any failure means the file is bad
            raise CheckpointError(f'cannot read safetensors file {file!r}: {type(e).__name__} (truncated or not a '
                             'safetensors file)') from e
    return state
