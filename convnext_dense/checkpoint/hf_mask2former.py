"""Hugging Face transformers' ``Mask2FormerForUniversalSegmentation`` with a ConvNeXt (V2) backbone, named as
mmdet's ``Mask2Former`` (instance, panoptic; head ``panoptic_head.``) or mmseg's ``EncoderDecoder`` with
``Mask2FormerHead`` (semantic; head ``decode_head.``) with our ``ConvNeXt``: one table of names, read both ways.

The structures map one to one (transformers ported the original Mask2Former code, as mmdet did): transformers'
``decoder_layers`` is mmdet's ``num_layers`` + 1 (it counts the prediction from the learned queries as a layer), its
decoder self-attention keeps q / k / v projections where mmdet's ``nn.MultiheadAttention`` keeps one
``in_proj_weight`` (split and joined here), and its loss holds ``criterion.empty_weight`` (the no-object class
weight), which mmdet keeps in the loss config: the export writes it, the import drops it.

The import (``model_layouts.MODEL_LAYOUTS``) names the head as mmdet's ``Mask2Former`` does (``panoptic_head.``): a
file's keys do not say whether it is to fill mmdet's model or mmseg's ``EncoderDecoder`` (``decode_head.``), whose
files ``mask2former_from_hf(state, 'decode_head.')`` converts.
"""
import re
from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor

from ..utils.errors import CheckpointError
from .hf_upernet import HF_LAYOUT, backbone_from_hf, backbone_to_hf
from .layouts import template_regex

StateDict = Dict[str, Tensor]
HF_BACKBONE = 'model.pixel_level_module.encoder.'
PIXEL, DECODER = 'model.pixel_level_module.decoder.', 'model.transformer_module.'
EMPTY_WEIGHT = 'criterion.empty_weight'
MMDET_HEAD = 'panoptic_head.'
# (mmdet's name below the head, transformers' name); {n} is a number carried over, `.weight` / `.bias` follow
HEAD_NAMES: Tuple[Tuple[str, str], ...] = (
    ('pixel_decoder.input_convs.{n}.conv', PIXEL + 'input_projections.{n}.0'),
    ('pixel_decoder.input_convs.{n}.gn', PIXEL + 'input_projections.{n}.1'),
    ('pixel_decoder.encoder.layers.{n}.self_attn.{attn}', PIXEL + 'encoder.layers.{n}.self_attn.{attn}'),
    ('pixel_decoder.encoder.layers.{n}.ffn.layers.0.0', PIXEL + 'encoder.layers.{n}.fc1'),
    ('pixel_decoder.encoder.layers.{n}.ffn.layers.1', PIXEL + 'encoder.layers.{n}.fc2'),
    ('pixel_decoder.encoder.layers.{n}.norms.0', PIXEL + 'encoder.layers.{n}.self_attn_layer_norm'),
    ('pixel_decoder.encoder.layers.{n}.norms.1', PIXEL + 'encoder.layers.{n}.final_layer_norm'),
    ('pixel_decoder.level_encoding.weight', PIXEL + 'level_embed'),
    ('pixel_decoder.lateral_convs.0.conv', PIXEL + 'adapter_1.0'),
    ('pixel_decoder.lateral_convs.0.gn', PIXEL + 'adapter_1.1'),
    ('pixel_decoder.output_convs.0.conv', PIXEL + 'layer_1.0'),
    ('pixel_decoder.output_convs.0.gn', PIXEL + 'layer_1.1'),
    ('pixel_decoder.mask_feature', PIXEL + 'mask_projection'),
    ('transformer_decoder.layers.{n}.self_attn.attn.in_proj_{qkv}', DECODER + 'decoder.layers.{n}.self_attn.{qkv}'),
    ('transformer_decoder.layers.{n}.self_attn.attn.out_proj', DECODER + 'decoder.layers.{n}.self_attn.out_proj'),
    ('transformer_decoder.layers.{n}.cross_attn.attn.{attn}', DECODER + 'decoder.layers.{n}.cross_attn.{attn}'),
    ('transformer_decoder.layers.{n}.ffn.layers.0.0', DECODER + 'decoder.layers.{n}.fc1'),
    ('transformer_decoder.layers.{n}.ffn.layers.1', DECODER + 'decoder.layers.{n}.fc2'),
    ('transformer_decoder.layers.{n}.norms.0', DECODER + 'decoder.layers.{n}.cross_attn_layer_norm'),
    ('transformer_decoder.layers.{n}.norms.1', DECODER + 'decoder.layers.{n}.self_attn_layer_norm'),
    ('transformer_decoder.layers.{n}.norms.2', DECODER + 'decoder.layers.{n}.final_layer_norm'),
    ('transformer_decoder.post_norm', DECODER + 'decoder.layernorm'),
    ('query_embed', DECODER + 'queries_embedder'),
    ('query_feat', DECODER + 'queries_features'),
    ('level_embed', DECODER + 'level_embed'),
    ('cls_embed', 'class_predictor'),
    ('mask_embed.{m}', DECODER + 'decoder.mask_predictor.mask_embedder.{m}.0'),
)
MASK_EMBED = 2  # mmdet's mask_embed is Linear, ReLU, Linear, ReLU, Linear: its layer m is transformers' m // 2


FIELDS = {'n': r'\d+', 'm': r'\d+', 'attn': r'[\w.]+', 'qkv': r'weight|bias'}  # of HEAD_NAMES' templates
_RULES = [(template_regex(ours, FIELDS), template_regex(theirs, FIELDS), ours, theirs) for ours, theirs in HEAD_NAMES]


def _head_to_hf(key: str, tensor: Tensor) -> List[Tuple[str, Tensor]]:
    for ours_re, _, _, theirs in _RULES:
        match = ours_re.match(key)
        if match is None:
            continue
        fields = {k: v for k, v in match.groupdict().items() if v is not None and k != 'leaf'}
        leaf = match.group('leaf') or ''
        if 'm' in fields:
            fields['m'] = str(int(fields['m']) // MASK_EMBED)
        if 'qkv' in fields:  # one in_proj -> q / k / v
            kind = fields['qkv']
            return [(theirs.replace('{qkv}', f'{name}_proj.{kind}').format(**fields), part)
                    for name, part in zip('qkv', tensor.chunk(3))]
        return [(theirs.format(**fields) + leaf, tensor)]
    raise CheckpointError(f'Mask2Former head key {key!r} has no transformers name')


def mask2former_to_hf(state: StateDict, head: str, num_classes: int, no_object_weight: float) -> StateDict:
    """mmdet / mmseg Mask2Former (head under ``head``, e.g. 'panoptic_head.') -> transformers' names, with the
    ``criterion.empty_weight`` of ``num_classes`` classes and the no-object class's ``no_object_weight``."""
    backbone = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    out = {HF_BACKBONE + k: v for k, v in backbone_to_hf(backbone).items()}
    for key, tensor in state.items():
        if key.startswith(head):
            out.update(_head_to_hf(key[len(head):], tensor))
        elif not key.startswith('backbone.'):
            raise CheckpointError(f'key {key!r} is neither backbone nor {head.rstrip(".")}')
    out[EMPTY_WEIGHT] = torch.tensor([1.0] * num_classes + [no_object_weight])
    return out


def mask2former_from_hf(state: StateDict, head: str) -> StateDict:
    """transformers' Mask2Former -> mmdet / mmseg names with the head under ``head``; q / k / v joined."""
    backbone = {k[len(HF_BACKBONE):]: v for k, v in state.items() if k.startswith(HF_BACKBONE)}
    out = {'backbone.' + k: v for k, v in backbone_from_hf(backbone).items()}
    pending: Dict[str, Dict[str, Tensor]] = {}
    for key, tensor in state.items():
        if key.startswith(HF_BACKBONE) or key == EMPTY_WEIGHT:
            continue
        for _, theirs_re, ours, theirs in _RULES:
            if '{qkv}' in theirs:
                qkv = re.match(re.escape(theirs).replace(r'\{n\}', r'(?P<n>\d+)').replace(
                    r'\{qkv\}', r'(?P<p>[qkv])_proj\.(?P<kind>weight|bias)') + '$', key)
                if qkv:
                    name = head + ours.format(n=qkv['n'], qkv=qkv['kind'])
                    pending.setdefault(name, {})[qkv['p']] = tensor
                    break
                continue
            match = theirs_re.match(key)
            if match:
                fields = {k: v for k, v in match.groupdict().items() if v is not None and k != 'leaf'}
                if 'm' in fields:
                    fields['m'] = str(int(fields['m']) * MASK_EMBED)
                out[head + ours.format(**fields) + (match.group('leaf') or '')] = tensor
                break
        else:
            raise CheckpointError(f'transformers Mask2Former key {key!r} has no mmdet / mmseg name')
    for name, parts in pending.items():
        out[name] = torch.cat([parts[p] for p in 'qkv'])
    return out


def is_hf_mask2former(keys: Sequence[str]) -> bool:
    """Whether ``keys`` are a ``Mask2FormerForUniversalSegmentation`` with a ConvNeXt (V2) backbone."""
    key_set = set(keys)
    return HF_BACKBONE + HF_LAYOUT.stem_key in key_set and 'class_predictor.weight' in key_set


def mask2former_from_hf_mmdet(state: StateDict) -> StateDict:
    """``mask2former_from_hf`` with mmdet's head name."""
    return mask2former_from_hf(state, MMDET_HEAD)


MODEL = ('a transformers Mask2FormerForUniversalSegmentation with a ConvNeXt or ConvNeXt V2 backbone, named as '
         'mmdet\'s Mask2Former (configs: configs/coco/mask2former_convnext_*.py)')
