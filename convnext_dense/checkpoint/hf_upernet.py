"""Hugging Face transformers' UperNet-ConvNeXt (``UperNetForSemanticSegmentation`` with a ``ConvNextBackbone`` or
``ConvNextV2Backbone``) and its backbone alone, named as mmseg's ``EncoderDecoder`` with our ``ConvNeXt``: one table
of names, read both ways (``to_hf`` for the export, ``from_hf`` for the import).

The structures are the same module for module (transformers' ``modeling_upernet.py`` is a port of mmseg's UPerHead
and FCNHead): only names differ, and ConvNeXt V2's GRN parameters, which transformers stores as (1, 1, 1, C). The
backbone's names come from the ``hf`` record of ``layouts.LAYOUTS`` plus the output norms: our ``norm{i}`` is
transformers' ``hidden_states_norms.stage{i+1}``. In the heads two module names differ: mmseg's ``bn`` / ``conv_seg``
are transformers' ``batch_norm`` / ``classifier``.
"""
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Dict, Optional, Sequence, Tuple

from torch import Tensor

from ..utils.errors import CheckpointError
from .layouts import LAYOUTS, template_regex

StateDict = Dict[str, Tensor]
BACKBONE, HEADS = 'backbone.', ('decode_head.', 'auxiliary_head.')
HEAD_MODULES = {'bn': 'batch_norm', 'conv_seg': 'classifier'}  # mmseg's module name -> transformers'
GRN = re.compile(r'\.grn\.(weight|bias)$')  # transformers' GRN names; (1, 1, 1, C) there, (C,) in ours
STAGE_OFFSET = 1  # transformers counts stages from 1 ('stage1'), we from 0


@dataclass(frozen=True)
class Rename:
    """One backbone part: our name and transformers', ``{i}`` a stage and ``{j}`` a block; transformers' ``{i}`` is
    ours + ``offset``. A name stands for the part's parameter or its ``.weight`` / ``.bias``."""
    ours: str
    theirs: str
    offset: int = 0

    @cached_property
    def regexes(self) -> Tuple['re.Pattern[str]', 're.Pattern[str]']:
        return template_regex(self.ours), template_regex(self.theirs)

    def rename(self, key: str, to_hf: bool) -> Optional[str]:
        """``key`` in the other framework's names, or None if it is not this part."""
        match = self.regexes[0 if to_hf else 1].match(key)
        if match is None:
            return None
        sign = 1 if to_hf else -1
        fields = {k: v for k, v in match.groupdict().items() if k in ('i', 'j') and v is not None}
        if 'i' in fields:
            fields['i'] = str(int(fields['i']) + sign * self.offset)
        return (self.theirs if to_hf else self.ours).format(**fields) + (match.group('leaf') or '')


HF_LAYOUT = next(layout for layout in LAYOUTS if layout.name == 'hf')
BACKBONE_RENAMES: Tuple[Rename, ...] = (
    *(Rename(ours, theirs) for ours, theirs in HF_LAYOUT.parts.items()),
    Rename('norm{i}', 'hidden_states_norms.stage{i}', offset=STAGE_OFFSET))


def _rename_backbone(key: str, to_hf: bool) -> str:
    for rename in BACKBONE_RENAMES:
        renamed = rename.rename(key, to_hf)
        if renamed is not None:
            return renamed
    side = 'convnext_dense.ConvNeXt' if to_hf else 'transformers ConvNext / ConvNextV2'
    raise CheckpointError(f'backbone key {key!r} is no {side} parameter')


def _rename_head(key: str, to_hf: bool) -> str:
    names = HEAD_MODULES if to_hf else {v: k for k, v in HEAD_MODULES.items()}
    return '.'.join(names.get(part, part) for part in key.split('.'))


def _reshape(key_hf: str, tensor: Tensor, to_hf: bool) -> Tensor:
    if GRN.search(key_hf):
        return tensor.reshape(1, 1, 1, -1) if to_hf else tensor.reshape(-1)
    return tensor


def backbone_to_hf(state: StateDict) -> StateDict:
    """Our backbone's state dict (no prefix) -> transformers' ``ConvNextBackbone`` / ``ConvNextV2Backbone``'s."""
    out = {}
    for key, tensor in state.items():
        hf_key = _rename_backbone(key, to_hf=True)
        out[hf_key] = _reshape(hf_key, tensor, to_hf=True)
    return out


def backbone_from_hf(state: StateDict) -> StateDict:
    """transformers' ``ConvNextBackbone`` / ``ConvNextV2Backbone`` state dict -> our backbone's."""
    return {_rename_backbone(key, to_hf=False): _reshape(key, tensor, to_hf=False) for key, tensor in state.items()}


def _convert(state: StateDict, to_hf: bool) -> StateDict:
    backbone = {k[len(BACKBONE):]: v for k, v in state.items() if k.startswith(BACKBONE)}
    heads = {k: v for k, v in state.items() if k.startswith(HEADS)}
    others = sorted(set(state) - set(heads) - {BACKBONE + k for k in backbone})
    if others:
        raise CheckpointError(f'{len(others)} keys are neither backbone nor UperNet head '
                              f'({", ".join(others[:5])}): not an UperNet + ConvNeXt model')
    renamed = backbone_to_hf(backbone) if to_hf else backbone_from_hf(backbone)
    return {**{BACKBONE + k: v for k, v in renamed.items()},
            **{_rename_head(k, to_hf): v for k, v in heads.items()}}


def upernet_to_hf(state: StateDict) -> StateDict:
    """mmseg's ``EncoderDecoder`` (our ConvNeXt, UPerHead, optional FCNHead) -> ``UperNetForSemanticSegmentation``."""
    return _convert(state, to_hf=True)


def upernet_from_hf(state: StateDict) -> StateDict:
    """``UperNetForSemanticSegmentation`` with a ConvNeXt (V2) backbone -> mmseg's ``EncoderDecoder`` names."""
    return _convert(state, to_hf=False)


def is_hf_upernet(keys: Sequence[str]) -> bool:
    """Whether ``keys`` are an ``UperNetForSemanticSegmentation`` with a ConvNeXt (V2) backbone."""
    key_set = set(keys)
    return BACKBONE + HF_LAYOUT.stem_key in key_set and 'decode_head.classifier.weight' in key_set


# what an HF UperNet file holds, for the record of it in ``model_layouts.MODEL_LAYOUTS``
MODEL = ('a transformers UperNetForSemanticSegmentation with a ConvNeXt or ConvNeXt V2 backbone (configs: '
         'configs/ade20k/upernet_convnext_*.py)')
