"""Folders written by Hugging Face's ``save_pretrained``: ``model.safetensors``, or shards named by
``model.safetensors.index.json``, beside ``config.json``. ``reader.read_checkpoint`` reads their weights as one state
dict wherever a checkpoint file goes. Only safetensors are read (no code in them to run).
"""
import json
import os
from typing import List

from ..utils.errors import CheckpointError, MissingFileError

WEIGHTS = 'model.safetensors'
INDEX = 'model.safetensors.index.json'


def holds_weights(path: str) -> bool:
    """Whether the directory ``path`` holds a ``save_pretrained`` model's safetensors."""
    return any(os.path.isfile(os.path.join(path, name)) for name in (WEIGHTS, INDEX))


def weight_files(path: str) -> List[str]:
    """The safetensors files of a ``save_pretrained`` folder: ``model.safetensors``, or every shard of its index.

    Raises:
        ValueError: The index is malformed.
        FileNotFoundError: The index names a shard that is missing.
    """
    if os.path.isfile(os.path.join(path, WEIGHTS)):
        return [os.path.join(path, WEIGHTS)]
    index = os.path.join(path, INDEX)
    try:
        with open(index, encoding='utf-8') as f:
            names = sorted(set(json.load(f)['weight_map'].values()))
    except (ValueError, KeyError, AttributeError, TypeError) as e:
        raise CheckpointError(f'{index} is no safetensors index (a "weight_map" of key -> file): '
                              f'{type(e).__name__}: {e}') from None
    for name in names:
        if not os.path.isfile(os.path.join(path, name)):
            raise MissingFileError(f'{index} names {name}, which is not in {path}')
    return [os.path.join(path, name) for name in names]
