"""The layer-wise learning-rate decay rule of the official ConvNeXt dense-prediction code, once, in plain PyTorch.

Source: ``object_detection/mmcv_custom/layer_decay_optimizer_constructor.py`` and its ``semantic_segmentation`` twin
of facebookresearch/ConvNeXt: parameter p with layer id i gets ``lr = base_lr * decay_rate ** (L + 1 - i)``, and no
weight decay when it is 1-D or its name ends in ``.bias``. The backbones answer the two questions of the rule
(``num_layers()`` and ``layer_id(name, decay_type, num_layers)``): this module holds the arithmetic on depths they
use, the rule applied to a whole model (``LayerDecay``: what ``engine``'s optimizer constructor reads) and its plain
PyTorch optimizer groups (``layer_decay_param_groups``).
"""
import math
import numbers
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from torch import nn

from ..utils.errors import ConfigError, ConfigTypeError

DECAY_TYPES = ('layer_wise', 'stage_wise')
BLOCKS_PER_LAYER = 3  # layer-wise decay groups consecutive blocks of a stage in threes (official rule)


def check_decay_type(decay_type: str) -> str:
    """``decay_type`` if it is one of ``DECAY_TYPES``, else a ValueError naming the valid ones."""
    if decay_type not in DECAY_TYPES:
        raise ConfigError(f'decay_type={decay_type!r} is unknown; valid: {DECAY_TYPES}')
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


def is_decay_backbone(module: nn.Module) -> bool:
    """Whether ``module`` answers the rule's questions: ``num_layers()`` and ``layer_id(name, decay_type,
    num_layers)``."""
    return callable(getattr(module, 'num_layers', None)) and callable(getattr(module, 'layer_id', None))


def find_decay_backbone(model: nn.Module) -> Tuple[str, nn.Module]:
    """The (name, module) of the one backbone in ``model`` that answers the rule (``is_decay_backbone``; '' when
    ``model`` is it); ValueError if there is none or several."""
    found = [(name, m) for name, m in model.named_modules() if is_decay_backbone(m)]
    if len(found) != 1:
        raise ConfigError(f'layer decay needs exactly one backbone with num_layers() and layer_id(name, decay_type, '
                          f'num_layers) (convnext_dense.ConvNeXt or ConvNeXtRoadmap) in the model, found {len(found)} '
                          f'in {type(model).__name__}: {[name for name, _ in found]}')
    return found[0]


def no_weight_decay(name: str, param: nn.Parameter) -> bool:
    """The official rule's exemption from weight decay: 1-D parameters (norms, layer scales, GRN) and biases."""
    return param.ndim == 1 or name.endswith('.bias')


class DecayedParameter(NamedTuple):
    """One trainable parameter under the rule."""
    name: str  # in the model
    param: nn.Parameter
    layer: int  # decay layer id: 0 (stem) .. L (last stage), L + 1 outside the backbone's stages
    lr_scale: float  # decay_rate ** (L + 1 - layer)
    no_weight_decay: bool  # ``no_weight_decay(name, param)``
    in_backbone: bool


class LayerDecay:
    """The rule applied to ``model``: its backbone (``find_decay_backbone``), L, and per trainable parameter its
    layer id, lr scale and weight-decay exemption.

    Args:
        model: A model holding exactly one backbone that answers the rule (ConvNeXt, ConvNeXtRoadmap), possibly
            the backbone itself or wrapped (DDP).
        decay_rate: Multiplier per layer below the top, in (0, 1]; 1 is no decay.
        decay_type: 'layer_wise' (groups of three blocks) or 'stage_wise' (one id per stage). Default: 'layer_wise'.
        num_layers: L; None derives it from the backbone (``num_layers()``: 6 for tiny, 12 for 27-block stage 2).
            A value below the backbone's would give its lower layers lr scales above 1. Default: None.

    Raises:
        TypeError: ``decay_rate`` is not a number or ``num_layers`` not an int.
        ValueError: ``decay_rate`` outside (0, 1], an unknown ``decay_type``, ``num_layers`` below the backbone's,
            or not exactly one backbone in ``model``.
    """

    def __init__(self, model: nn.Module, decay_rate: float, decay_type: str = 'layer_wise',
                 num_layers: Optional[int] = None) -> None:
        if isinstance(decay_rate, bool) or not isinstance(decay_rate, numbers.Real):
            raise ConfigTypeError(f'decay_rate={decay_rate!r} must be a number in (0, 1]')
        if not 0 < decay_rate <= 1:
            raise ConfigError(f'decay_rate={decay_rate} must be in (0, 1]; 1 is no decay')
        self.decay_rate = float(decay_rate)
        self.decay_type = check_decay_type(decay_type)
        self.model = model
        self.backbone_name, self.backbone = find_decay_backbone(model)
        needed = self.backbone.num_layers()
        if num_layers is None:
            num_layers = needed
        if isinstance(num_layers, bool) or not isinstance(num_layers, numbers.Integral):
            raise ConfigTypeError(f'num_layers={num_layers!r} must be an int >= {needed}, or None to derive it')
        if num_layers < needed:
            depths = getattr(self.backbone, 'arch_depths', None)
            raise ConfigError(f'num_layers={num_layers} is smaller than the {needed} layers of the '
                             f'{type(self.backbone).__name__} backbone' + (f' (depths {depths})' if depths else '') +
                             f': its lower layers would get lr scales above 1. Use num_layers >= {needed}, or leave '
                             'it out to derive it.')
        self.num_layers = int(num_layers)

    def parameters(self) -> Iterator[DecayedParameter]:
        """Every trainable parameter of the model (``requires_grad``; frozen ones are left out), in model order."""
        prefix = f'{self.backbone_name}.' if self.backbone_name else ''
        for name, param in self.model.named_parameters():
            if not param.requires_grad:
                continue
            in_backbone = name.startswith(prefix)
            layer = (self.backbone.layer_id(name[len(prefix):], self.decay_type, self.num_layers) if in_backbone
                     else self.num_layers + 1)
            yield DecayedParameter(name, param, layer, self.decay_rate**(self.num_layers + 1 - layer),
                                   no_weight_decay(name, param), in_backbone)


def layer_decay_param_groups(model: nn.Module, lr: float, weight_decay: float, decay_rate: float,
                             decay_type: str = 'layer_wise', num_layers: Optional[int] = None
                             ) -> List[Dict[str, Any]]:
    """Plain PyTorch optimizer parameter groups with ConvNeXt's layer-wise (or stage-wise) lr decay.

    The official rule, as ``ConvNeXtLayerDecayOptimizerConstructor`` (mmengine) applies it with default options:
    parameter p with layer id i (``backbone.layer_id``) gets ``lr * decay_rate ** (L + 1 - i)``; everything outside
    the backbone (neck, heads) is layer L + 1, the base ``lr``. Weight decay is ``weight_decay`` except for 1-D
    parameters (norm weights and biases, layer scales, GRN) and parameters whose name ends in ``.bias``, which get
    0, inside the backbone and out. Frozen parameters (``requires_grad=False``) are left out. Parameters with equal
    options share a group, so there are at most two groups per layer.

    Args:
        model: A model holding exactly one ConvNeXt / ConvNeXtRoadmap (or any module with ``num_layers()`` and
            ``layer_id(name, decay_type, num_layers)``), or that backbone itself.
        lr: The base learning rate (of the top layer, neck and heads).
        weight_decay: The weight decay of the parameters that are decayed.
        decay_rate: Multiplier per layer below the top, in (0, 1]; 1 is no decay. Published: 0.7 to 0.9.
        decay_type: 'layer_wise' (groups of three blocks) or 'stage_wise'. Default: 'layer_wise'.
        num_layers: L; None derives it from the backbone (6 for tiny, 12 for 27-block stage 2). Default: None.

    Returns:
        A list of dicts with ``params``, ``lr`` and ``weight_decay``, for ``torch.optim.AdamW(groups)`` (any optimizer
        and lr scheduler: a scheduler scales each group's own ``lr``).

    Raises:
        TypeError: A number argument is not a number (``num_layers``: not an int).
        ValueError: ``lr`` or ``weight_decay`` negative, ``decay_rate`` outside (0, 1], an unknown ``decay_type``,
            ``num_layers`` below the backbone's, or not exactly one backbone in ``model``.
    """
    for arg, value in (('lr', lr), ('weight_decay', weight_decay)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigTypeError(f'{arg}={value!r} must be a number >= 0')
        if not value >= 0:
            raise ConfigError(f'{arg}={value} must be >= 0')
    groups: Dict[Tuple[float, float], Dict[str, Any]] = {}
    for p in LayerDecay(model, decay_rate, decay_type, num_layers).parameters():
        options = (lr * p.lr_scale, 0.0 if p.no_weight_decay else weight_decay)
        groups.setdefault(options, dict(params=[], lr=options[0], weight_decay=options[1]))['params'].append(p.param)
    return list(groups.values())
