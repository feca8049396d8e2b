"""The ConvNeXt arch table and what follows from it: stage channels and strides, and names for a file's arch.

Depths and channels are those of the official ConvNeXt (tiny ... xlarge; Liu et al., CVPR 2022,
https://github.com/facebookresearch/ConvNeXt) and ConvNeXt V2 (atto ... nano and huge; Woo et al., CVPR 2023,
https://github.com/facebookresearch/ConvNeXt-V2), and xxlarge of OpenCLIP (LAION's CLIP ConvNeXt-XXLarge; timm's
``convnext_xxlarge``, whose every LayerNorm has eps 1e-5). Nothing else in the package, its configs or its tests
types them. An entry without ``norm_eps`` has the official LayerNorm eps, ``DEFAULT_NORM_EPS``.
"""
import re
from typing import Any, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from torch import Tensor

from ..utils.errors import CheckpointError, ConfigError, ConfigTypeError

ARCH_SETTINGS: Dict[str, Dict[str, Any]] = {
    'atto': dict(depths=(2, 2, 6, 2), channels=(40, 80, 160, 320)),
    'femto': dict(depths=(2, 2, 6, 2), channels=(48, 96, 192, 384)),
    'pico': dict(depths=(2, 2, 6, 2), channels=(64, 128, 256, 512)),
    'nano': dict(depths=(2, 2, 8, 2), channels=(80, 160, 320, 640)),
    'tiny': dict(depths=(3, 3, 9, 3), channels=(96, 192, 384, 768)),
    'small': dict(depths=(3, 3, 27, 3), channels=(96, 192, 384, 768)),
    'base': dict(depths=(3, 3, 27, 3), channels=(128, 256, 512, 1024)),
    'large': dict(depths=(3, 3, 27, 3), channels=(192, 384, 768, 1536)),
    'xlarge': dict(depths=(3, 3, 27, 3), channels=(256, 512, 1024, 2048)),
    'huge': dict(depths=(3, 3, 27, 3), channels=(352, 704, 1408, 2816)),
    'xxlarge': dict(depths=(3, 4, 30, 3), channels=(384, 768, 1536, 3072), norm_eps=1e-5),
}
DEFAULT_NORM_EPS = 1e-6  # every LayerNorm of the official ConvNeXt (stem, downsampling, blocks, output norms)

STEM_STRIDE = 4  # the stem patchifies 4x4; each later stage halves the resolution

Arch = Union[str, Mapping[str, Sequence[int]]]


def resolve_arch(arch: Arch) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """(depths, channels) of an arch name of ``ARCH_SETTINGS`` or of a dict with ``depths`` and ``channels``.

    Raises:
        ValueError: An unknown name, a dict without both keys, or lengths / values that do not make an arch.
        TypeError: ``arch`` is neither a name nor a dict.
    """
    if isinstance(arch, str):
        if arch not in ARCH_SETTINGS:
            raise ConfigError(f'unknown ConvNeXt arch {arch!r}; valid: {", ".join(ARCH_SETTINGS)} '
                              'or a dict with "depths" and "channels"')
        arch = ARCH_SETTINGS[arch]
    if not isinstance(arch, Mapping):
        raise ConfigTypeError(f'arch must be a name or a dict with "depths" and "channels", got {type(arch).__name__}')
    missing = {'depths', 'channels'} - set(arch)
    if missing:
        raise ConfigError(f'arch dict {dict(arch)} lacks {sorted(missing)}; it needs "depths" and "channels"')
    depths, channels = tuple(arch['depths']), tuple(arch['channels'])
    if not depths or len(depths) != len(channels):
        raise ConfigError(f'arch depths {depths} and channels {channels} must be non-empty and of equal length')
    if not all(isinstance(v, int) and v > 0 for v in depths + channels):
        raise ConfigError(f'arch depths {depths} and channels {channels} must be positive integers')
    return depths, channels


def arch_norm_eps(arch: Arch) -> float:
    """The LayerNorm eps of an arch: its ``norm_eps`` entry, else ``DEFAULT_NORM_EPS``."""
    settings = ARCH_SETTINGS.get(arch, {}) if isinstance(arch, str) else arch
    return float(settings.get('norm_eps', DEFAULT_NORM_EPS))


def resolve_out_indices(out_indices: Union[int, Sequence[int], None], num_stages: int) -> Tuple[int, ...]:
    """Sorted, non-negative stage indices; None means every stage, negative ones count from the last.

    Raises:
        ValueError: An index out of range, a repeated stage, or no stage at all.
    """
    if out_indices is None:
        return tuple(range(num_stages))
    if isinstance(out_indices, int):
        out_indices = (out_indices,)
    resolved = []
    for index in out_indices:
        if not -num_stages <= index < num_stages:
            raise ConfigError(f'out_indices {tuple(out_indices)}: {index} is out of range for {num_stages} '
                              f'stages; valid: {-num_stages}..{num_stages - 1}')
        resolved.append(index % num_stages)
    if not resolved or len(set(resolved)) != len(resolved):
        raise ConfigError(f'out_indices {tuple(out_indices)} must name at least one stage, each once')
    return tuple(sorted(resolved))


class OutputShape(NamedTuple):
    """What a ConvNeXt backbone returns: one map per returned stage, in this order.

    Attributes:
        indices: The stages returned.
        channels: Channels of each returned map (what a neck's ``in_channels`` must be).
        strides: Stride of each returned map relative to the input (4, 8, 16, 32 for four stages).
    """
    indices: Tuple[int, ...]
    channels: Tuple[int, ...]
    strides: Tuple[int, ...]


def output_shape(arch: Arch = 'tiny', out_indices: Union[int, Sequence[int], None] = None) -> OutputShape:
    """The maps ``ConvNeXt(arch=arch, out_indices=out_indices)`` returns, without building it.

    Configs use it for the inputs of the neck and heads, e.g.
    ``neck=dict(in_channels=list(output_shape('base').channels))``.

    Args:
        arch: As ``ConvNeXt``'s ``arch``. Default: 'tiny'.
        out_indices: As ``ConvNeXt``'s ``out_indices``. Default: None (every stage).
    """
    depths, channels = resolve_arch(arch)
    indices = resolve_out_indices(out_indices, len(depths))
    return OutputShape(indices, tuple(channels[i] for i in indices), tuple(STEM_STRIDE * 2**i for i in indices))


def infer_arch(state_dict: Mapping[str, Tensor]) -> Dict[str, Tuple[int, ...]]:
    """Depths and channels of the stages stored in a backbone state dict with our names (stages 0..n-1, n >= 1).

    Raises:
        ValueError: The state dict has no stem or its stages are not 0..n-1.
    """
    channels: Dict[int, int] = {}
    depths: Dict[int, int] = {}
    for key, tensor in state_dict.items():
        block = re.match(r'stages\.(\d+)\.(\d+)\.dwconv\.weight$', key)
        if block:
            i, j = int(block.group(1)), int(block.group(2))
            channels[i], depths[i] = tensor.shape[0], max(depths.get(i, 0), j + 1)
    has_stem = 'downsample_layers.0.0.weight' in state_dict
    if not has_stem or not depths or sorted(depths) != list(range(len(depths))):
        raise CheckpointError(f'cannot infer the arch: the stem and the blocks of stages 0..n-1 are needed, got '
                              f'blocks of stages {sorted(depths)} and {"a" if has_stem else "no"} stem')
    return dict(depths=tuple(depths[i] for i in sorted(depths)), channels=tuple(channels[i] for i in sorted(depths)))


def describe_arch(depths: Sequence[int], channels: Sequence[int]) -> str:
    """Name the ``ARCH_SETTINGS`` entries whose first stages have these channels (and depths, where complete)."""
    n = len(channels)
    names = [name for name, arch in ARCH_SETTINGS.items() if tuple(arch['channels'][:n]) == tuple(channels)]
    exact = [name for name in names if tuple(ARCH_SETTINGS[name]['depths'][:len(depths)]) == tuple(depths)]
    names = exact or names
    shape = f'depths {tuple(depths)}, channels {tuple(channels)}'
    return f'{" or ".join(repr(n) for n in names)} ({shape})' if names else f'no arch in ARCH_SETTINGS ({shape})'


def likely_arch(state_dict: Mapping[str, Tensor], fallback: Optional[str] = None) -> str:
    """'ConvNeXt <describe_arch>' of a backbone state dict with our names, or ``fallback`` if none can be inferred."""
    try:
        return 'ConvNeXt ' + describe_arch(**infer_arch(state_dict))
    except ValueError:
        return fallback or 'an arch that cannot be inferred (no stem or no blocks)'
