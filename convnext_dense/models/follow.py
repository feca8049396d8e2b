"""A model whose neck and heads read their input channels from its backbone when it is built.

A config fixes the neck's / heads' ``in_channels`` when it is parsed, but ``--cfg-options model.backbone.step=gelu``
(or any backbone option that changes its outputs) is merged after parsing, and a stock mmdet / mmseg config keeps
ResNet's channels when only its backbone is swapped. ``FollowBackbone`` builds the model the config describes
(``model_type``, e.g. 'RetinaNet' or 'EncoderDecoder', with the same keys as that model) after setting each channel
field of ``READERS`` from the backbone's ``output_shape()``: the maps a part reads (its ``in_index``, all of them
when it has none). The backbone is built for that on the meta device (no memory, no weights read); the model is the
toolkit's own, unchanged.

With ``overwrite=True`` (the backbone swap into a stock config, docs/stock_configs.md) the fields are set whatever
the base config held; with the default ``overwrite=False`` (the roadmap configs) unset fields are filled and a set
value that disagrees with the backbone is a ``ConfigError`` naming the key and the value it needs, when the model is
built: no convolution checks its input channels before the first forward.
"""
import copy
from typing import Any, Dict, Iterator, List, Sequence, Tuple, Union

import torch

from ..utils.errors import ConfigError, ConfigTypeError

# (part of the model, channel field, which maps it reads): 'index' reads the part's in_index (every map without one),
# 'first' the first map (DeepLabV3+'s low-level c1 input, mmseg's DepthwiseSeparableASPPHead reads inputs[0])
READERS: Tuple[Tuple[str, str, str], ...] = (
    ('neck', 'in_channels', 'index'),  # FPN, ChannelMapper, CSPNeXtPAFPN, ...
    ('decode_head', 'in_channels', 'index'),  # mmseg heads, Mask2Former's (mmseg)
    ('decode_head', 'c1_in_channels', 'first'),  # DeepLabV3+
    ('auxiliary_head', 'in_channels', 'index'),  # one head or a list of them
    ('panoptic_head', 'in_channels', 'index'),  # Mask2Former / MaskFormer (mmdet)
)

CHAINED = ('neck',)  # a list of these is a chain: only its first reads the backbone


def _channels_read(part: Dict[str, Any], field: str, reads: str, channels: Sequence[int]) -> Union[int, list]:
    """The value of ``part[field]`` for a part that reads ``channels`` as ``reads`` says."""
    if reads == 'first':
        return channels[0]
    index = part.get('in_index')
    if index is None:
        return list(channels)
    if isinstance(index, int):
        return channels[index]
    return [channels[i] for i in index]


def _parts(model: Dict[str, Any], name: str) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """(config key, part) of ``model[name]`` that read the backbone: one dict; in a list, each head (mmseg's list of
    auxiliary heads reads it in parallel) but only the first neck (mmdet's ``neck=[FPN, BFP]`` is a chain)."""
    value = model.get(name)
    if isinstance(value, dict):
        yield f'model.{name}', value
    elif isinstance(value, (list, tuple)):
        parts = [(f'model.{name}.{i}', part) for i, part in enumerate(value) if isinstance(part, dict)]
        yield from parts[:1] if name in CHAINED else parts


def follow_channels(model: Dict[str, Any], channels: Sequence[int], overwrite: bool = False,
                    backbone: str = 'the backbone') -> List[str]:
    """Set the channel fields of ``model``'s readers (``READERS``) to what a backbone returning ``channels`` gives them,
    in place.

    Args:
        model: A model config (its neck, heads).
        channels: The channels of the backbone's output maps, in order.
        overwrite: Set fields that hold another value too. Default: False (such a field is an error).
        backbone: The backbone, as the error names it. Default: 'the backbone'.

    Returns:
        The keys that were set, as ``model.neck.in_channels=[...]``.

    Raises:
        ConfigError: Without ``overwrite``, a field holds another value than the backbone gives it.
    """
    changed = []
    for name, field, reads in READERS:
        for key, part in _parts(model, name):
            if reads == 'first' and not part.get(field):
                continue  # only heads with a low-level input declare it (DeepLabV3+'s 0: none)
            wanted = _channels_read(part, field, reads, channels)
            given = part.get(field)
            given = list(given) if isinstance(given, (list, tuple)) else given
            if given == wanted:
                continue
            if given is not None and not overwrite:
                raise ConfigError(f'{key}.{field}={given} but {backbone} returns {wanted} there: set {key}.{field}='
                                  f'{wanted}, or None to read it from the backbone')
            part[field] = wanted
            changed.append(f'{key}.{field}={wanted}')
    return changed


def FollowBackbone(model_type: str, backbone: Dict[str, Any], overwrite: bool = False,  # noqa: N802
                   **model: Any) -> torch.nn.Module:
    """Build ``dict(type=model_type, backbone=backbone, **model)`` with the readers' channel fields set from the
    backbone (``follow_channels``).

    Args:
        model_type: The model's type in the toolkit's registry ('RetinaNet', 'EncoderDecoder', ...).
        backbone: The backbone's config; the built backbone must have ``output_shape()``.
        overwrite: Set the fields whatever the config holds (a stock config's are its own backbone's). Default:
            False: fill unset fields, and a set value that disagrees with the backbone is an error.
        **model: The rest of the model's config.

    Raises:
        ConfigTypeError: The backbone has no ``output_shape()``.
        ConfigError: Without ``overwrite``, a reader's field holds other channels than the backbone returns there.
    """
    from mmengine.registry import MODELS  # lazy: a registry build calls this, so mmengine is there; the core needs none
    with torch.device('meta'):
        built = MODELS.build(dict(backbone, init_cfg=None))
    if not callable(getattr(built, 'output_shape', None)):
        readers = ', '.join(dict.fromkeys(f'{name}.{field}' for name, field, _ in READERS))
        raise ConfigTypeError(f'FollowBackbone needs a backbone that states its maps with output_shape(); '
                              f'{backbone.get("type")} has none: set {readers} by hand')
    model = copy.deepcopy(model)  # the runner's config stays as written
    described = {k: v for k, v in backbone.items() if k in ('step', 'regime', 'arch')}
    follow_channels(model, built.output_shape().channels, overwrite,
                    f'the backbone ({backbone.get("type")} {described})')
    return MODELS.build(dict(type=model_type, backbone=backbone, **model))
