"""Whole-model checkpoint layouts: files of a whole detector or segmenter written by another framework (not only a
backbone), renamed to the names of the mmdet / mmseg model our configs build. One record per layout, beside the
backbone layouts of ``layouts.LAYOUTS``; the backbone inside is then renamed by those (``map_whole_model``).
"""
from dataclasses import dataclass
from typing import Callable, Collection, Dict, Optional, Sequence, Tuple

from torch import Tensor

from . import detrex_dino, hf_mask2former, hf_upernet

StateDict = Dict[str, Tensor]


@dataclass(frozen=True)
class ModelLayout:
    """One whole-model layout.

    Attributes:
        name: How reports name it.
        model: What the file holds, and the configs it fits, for reports and errors.
        detect: Whether a file's keys (wrappers and containers already stripped) are of this layout.
        convert: The file's state dict -> the mmdet / mmseg model's (every key renamed or reshaped; a key it cannot
            place raises a ``ValueError`` naming it).
    """
    name: str
    model: str
    detect: Callable[[Sequence[str]], bool]
    convert: Callable[[StateDict], StateDict]


# transformers' UperNet and Mask2Former (HF save_pretrained files), detrex's DINO (its published DINO-ConvNeXt
# files); detection takes the first that claims a file's keys.
MODEL_LAYOUTS: Tuple[ModelLayout, ...] = (
    ModelLayout('hf_upernet', hf_upernet.MODEL, hf_upernet.is_hf_upernet, hf_upernet.upernet_from_hf),
    ModelLayout('hf_mask2former', hf_mask2former.MODEL, hf_mask2former.is_hf_mask2former,
                hf_mask2former.mask2former_from_hf_mmdet),
    ModelLayout('detrex DINO', detrex_dino.MODEL, detrex_dino.is_detrex_dino, detrex_dino.detrex_dino_to_mmdet),
)


def detect_model_layout(keys: Sequence[str]) -> Optional[ModelLayout]:
    """The whole-model layout of ``keys``, or None (a file of our own models, or a backbone file)."""
    return next((layout for layout in MODEL_LAYOUTS if layout.detect(keys)), None)


# mmseg's Mask2FormerHead is mmdet's (a subclass: the same parameters): mmdet's Mask2Former keeps it as
# `panoptic_head`, mmseg's semantic one as `decode_head`. transformers' Mask2Former files convert to mmdet's names.
SAME_HEAD = ('panoptic_head.', 'decode_head.')


def name_head_as_model(state: StateDict, model_keys: Collection[str]) -> Optional[StateDict]:
    """``state`` with its Mask2Former head under the name ``model_keys`` use, or None if nothing is renamed.

    A head is renamed only when the model has no key under the file's name and every renamed key is the model's.
    """
    for theirs, ours in (SAME_HEAD, SAME_HEAD[::-1]):
        head = [k for k in state if k.startswith(theirs)]
        if not head or any(k.startswith(theirs) for k in model_keys):
            continue
        if all(ours + k[len(theirs):] in model_keys for k in head):
            return {ours + k[len(theirs):] if k.startswith(theirs) else k: v for k, v in state.items()}
    return None
