"""A model whose neck and heads read their input channels from its backbone when it is built.

A config fixes the neck's / heads' ``in_channels`` when it is parsed, but ``--cfg-options model.backbone.step=gelu``
(or any backbone option that changes its outputs) is merged after parsing. ``FollowBackbone`` builds the model the
config describes (``model_type``, e.g. 'MaskRCNN' or 'EncoderDecoder', with the same keys as that model) after
filling each unset ``in_channels`` of ``neck``, ``decode_head`` and ``auxiliary_head`` from the backbone's
``output_shape()``: the maps a part reads (its ``in_index``, all of them when it has none). The backbone is
built for that on the meta device (no memory, no weights read); the model is the toolkit's own, unchanged.
"""
from typing import Any, Dict, Sequence, Union

import torch

from ..utils.errors import ConfigError, ConfigTypeError

READERS = ('neck', 'decode_head', 'auxiliary_head')  # the parts that read the backbone's maps


def _channels_read(part: Dict[str, Any], channels: Sequence[int]) -> Union[int, list]:
    """The ``in_channels`` of a neck / head that reads ``part['in_index']`` (or every map) of ``channels``."""
    index = part.get('in_index')
    if index is None:
        return list(channels)
    if isinstance(index, int):
        return channels[index]
    return [channels[i] for i in index]


def FollowBackbone(model_type: str, backbone: Dict[str, Any], **model: Any) -> torch.nn.Module:  # noqa: N802
    """Build ``dict(type=model_type, backbone=backbone, **model)`` with the readers' ``in_channels`` filled in.

    Args:
        model_type: The model's type in the toolkit's registry ('MaskRCNN', 'EncoderDecoder', ...).
        backbone: The backbone's config; the built backbone must have ``output_shape()``.
        **model: The rest of the model's config.

    Raises:
        TypeError: The backbone has no ``output_shape()``.
        ValueError: A reader's config sets ``in_channels`` to other channels than the backbone returns.
    """
    from mmengine.registry import MODELS  # lazy: a registry build calls this, so mmengine is there; the core needs none
    with torch.device('meta'):
        built = MODELS.build(dict(backbone, init_cfg=None))
    if not callable(getattr(built, 'output_shape', None)):
        raise ConfigTypeError(f'FollowBackbone needs a backbone that states its maps with output_shape(); '
                              f'{backbone.get("type")} has none: set the in_channels of {", ".join(READERS)} by hand')
    channels = built.output_shape().channels
    for name in READERS:
        part = model.get(name)
        if not part:
            continue
        wanted = _channels_read(part, channels)
        given = part.get('in_channels')
        if given is not None and (list(given) if isinstance(given, (list, tuple)) else given) != wanted:
            raise ConfigError(f'model.{name}.in_channels={given} but the backbone ({backbone.get("type")} '
                              f'{ {k: v for k, v in backbone.items() if k in ("step", "regime", "arch")} }) returns '
                              f'{wanted} there: leave in_channels=None to read them from the backbone')
        model[name] = dict(part, in_channels=wanted)
    return MODELS.build(dict(type=model_type, backbone=backbone, **model))
