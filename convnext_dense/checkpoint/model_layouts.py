"""Whole-model checkpoint layouts: files of a whole detector or segmenter written by another framework (not only a
backbone), renamed to the names of the mmdet / mmseg model our configs build. One record per layout, beside the
backbone layouts of ``layouts.LAYOUTS``; the backbone inside is then renamed by those (``map_whole_model``).
"""
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Tuple

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
