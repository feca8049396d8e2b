"""The layer-wise learning-rate decay rule of the official ConvNeXt dense-prediction code, once, in plain PyTorch.

Source: ``object_detection/mmcv_custom/layer_decay_optimizer_constructor.py`` and its ``semantic_segmentation`` twin
of facebookresearch/ConvNeXt: parameter p with layer id i gets ``lr = base_lr * decay_rate ** (L + 1 - i)``. The
backbones answer the two questions of the rule (``num_layers()`` and ``layer_id(name, decay_type, num_layers)``):
this module holds the arithmetic on depths they use.
"""
import math
from typing import Sequence

DECAY_TYPES = ('layer_wise', 'stage_wise')
BLOCKS_PER_LAYER = 3  # layer-wise decay groups consecutive blocks of a stage in threes (official rule)


def check_decay_type(decay_type: str) -> str:
    """``decay_type`` if it is one of ``DECAY_TYPES``, else a ValueError naming the valid ones."""
    if decay_type not in DECAY_TYPES:
        raise ValueError(f'decay_type={decay_type!r} is unknown; valid: {DECAY_TYPES}')
    return decay_type


def num_decay_layers(depths: Sequence[int]) -> int:
    """L of the official layer-wise rule for stages of these depths.

    Layer 0 is the stem; every stage but the last adds one layer per (started) group of three blocks; the last
    stage is layer L; parameters outside the stages (output norms, neck, heads) are L + 1.
    """
    return _first_layer(depths, len(depths) - 1)


def _first_layer(depths: Sequence[int], stage: int) -> int:
    """Decay layer id of the first block group of ``stage`` under the layer-wise rule."""
    return 1 + sum(math.ceil(d / BLOCKS_PER_LAYER) for d in depths[:stage])


def block_layer_id(depths: Sequence[int], stage: int, block: int, decay_type: str, num_layers: int) -> int:
    """Decay layer id of block ``block`` of ``stage``: its group of three blocks (the last stage: L), or for
    'stage_wise' the stage + 1."""
    check_decay_type(decay_type)
    if decay_type == 'stage_wise':
        return stage + 1
    if stage == len(depths) - 1:
        return num_layers
    return _first_layer(depths, stage) + block // BLOCKS_PER_LAYER


def convnext_layer_id(name: str, depths: Sequence[int], decay_type: str, num_layers: int) -> int:
    """The official rule on ConvNeXt's names: the stem is 0, a downsample layer joins its stage's first block group
    (for 'stage_wise' all downsample layers are 0), the output norms are L + 1."""
    check_decay_type(decay_type)
    part, _, rest = name.partition('.')
    if part not in ('downsample_layers', 'stages'):
        return num_layers + 1  # output norms norm{i}
    stage_name, _, rest = rest.partition('.')
    stage = int(stage_name)
    if part == 'downsample_layers' and (stage == 0 or decay_type == 'stage_wise'):
        return 0
    block = int(rest.partition('.')[0]) if part == 'stages' else 0
    return block_layer_id(depths, stage, block, decay_type, num_layers)
