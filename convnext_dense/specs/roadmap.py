"""The roadmap of "A ConvNet for the 2020s" (Liu et al., CVPR 2022, arXiv 2201.03545, Section 2, Figure 2 and
Appendix C) as one table of design changes: what each step changes, what follows from it (the design of a step, the
maps its backbone returns), and the paper's ImageNet-1K numbers for it.

A step's design is its parent's with the step's change applied; the parent is the previous step of
``ROADMAP_STEPS`` on the main path, so the steps accumulate, and the side branches ``kernel_5``, ``kernel_9`` and
``kernel_11`` (the paper's kernel-size sweep) hang off ``move_up_depthwise`` while the path goes on with
``kernel_7``. Two regimes: ResNet-50 -> ConvNeXt-T, and ResNet-200 -> ConvNeXt-B (Appendix C: blocks (3, 24, 36, 3)
-> (3, 3, 27, 3) with width 64 -> 84 at the stage-ratio step, width 128 at its own step after the depthwise one).

``PAPER`` holds the published top-1 (mean of 3 seeds) and GFLOPs at 224 x 224 of Tables 10 and 11. Table 10 gives
4.46 G for the ResNet-50 regime's LayerNorm step, Figure 2 gives 4.2: swapping BN for LN changes no convolution or
linear layer, so that step costs what ``fewer_norms`` costs (4.15; Table 11's LayerNorm row equals its fewer-norms
row, 14.81), which Figure 2's 4.2 rounds and 4.46 cannot be (it is, to two decimals, ConvNeXt-T's own count,
4.455: the next row's model). ``PAPER_FLOPS_ERRATA`` records it.
"""
import dataclasses
from typing import Dict, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from ..utils.errors import ConfigError
from .arch import OutputShape, output_shape

ROADMAP_STEPS: Tuple[str, ...] = (
    'resnet', 'stage_ratio', 'patchify', 'depthwise', 'wider', 'inverted_bottleneck', 'move_up_depthwise',
    'kernel_5', 'kernel_7', 'kernel_9', 'kernel_11', 'gelu', 'fewer_activations', 'fewer_norms', 'layer_norm',
    'separate_downsampling')
KERNEL_SWEEP: Tuple[str, ...] = ('kernel_5', 'kernel_7', 'kernel_9', 'kernel_11')
SIDE_BRANCHES: Tuple[str, ...] = ('kernel_5', 'kernel_9', 'kernel_11')  # the path goes on with kernel_7


class Regime(NamedTuple):
    """One path of the roadmap: the ResNet it starts from and the ConvNeXt it ends at.

    Attributes:
        depths: Blocks per stage of the ResNet.
        stage_ratio: Blocks per stage from the stage-ratio step on.
        ratio_width: Bottleneck width of stage 0 from the stage-ratio step on (ResNet: 64).
        wide: Width from the ``wider`` step on (the Swin model's channels).
        convnext: The ``ARCH_SETTINGS`` entry the path ends at (None for a regime of one's own).
    """
    depths: Tuple[int, ...]
    stage_ratio: Tuple[int, ...]
    ratio_width: int
    wide: int
    convnext: Optional[str] = None


REGIMES: Dict[str, Regime] = {
    'resnet50': Regime((3, 4, 6, 3), (3, 3, 9, 3), 64, 96, 'tiny'),
    'resnet200': Regime((3, 24, 36, 3), (3, 3, 27, 3), 84, 128, 'base'),
}


@dataclasses.dataclass(frozen=True)
class Design:
    """The design decisions of one step; each later step turns one of them.

    Attributes:
        depths: Blocks per stage.
        width: Bottleneck width of stage 0 (doubling per stage); also the stem's channels.
        patchify: A 4 x 4 stride-4 convolution as the stem instead of ResNet's 7 x 7 convolution, BN, ReLU, max pool.
        depthwise: The bottleneck's 3 x 3 convolution is depthwise (groups = channels).
        inverted: Inverted bottleneck: the block's hidden width is 4x its output width (ResNet: 1/4).
        moved_up: The depthwise convolution comes first in the block, on the narrow channels.
        kernel: Size of the (depthwise) spatial convolution.
        gelu: GELU instead of ReLU.
        fewer_activations: One activation per block, between the two 1 x 1 layers.
        fewer_norms: One norm per block, after the depthwise convolution (before the 1 x 1 layers).
        layer_norm: LayerNorm instead of BatchNorm.
        separate_downsampling: ConvNeXt: 2 x 2 stride-2 downsampling layers between stages, LayerNorms after the
            stem, before each downsampling layer and on each returned map.
    """
    depths: Tuple[int, ...]
    width: int = 64
    patchify: bool = False
    depthwise: bool = False
    inverted: bool = False
    moved_up: bool = False
    kernel: int = 3
    gelu: bool = False
    fewer_activations: bool = False
    fewer_norms: bool = False
    layer_norm: bool = False
    separate_downsampling: bool = False

    def planes(self, stage: int) -> int:
        """The stage's width: the bottleneck's narrow channels, or the inverted bottleneck's outer ones."""
        return self.width * 2**stage

    def channels(self, stage: int) -> int:
        """Channels of the stage's output map (the residual stream)."""
        return self.planes(stage) if self.inverted else 4 * self.planes(stage)

    def hidden(self, stage: int) -> int:
        """Channels between the block's two 1 x 1 layers (before move-up: around the 3 x 3 convolution)."""
        return 4 * self.planes(stage) if self.inverted else self.planes(stage)


def _change(step: str, regime: Regime) -> Dict[str, object]:
    """What ``step`` changes in its parent's design."""
    if step.startswith('kernel_'):
        return dict(kernel=int(step.partition('_')[2]))
    return {
        'resnet': {},
        'stage_ratio': dict(depths=regime.stage_ratio, width=regime.ratio_width),
        'patchify': dict(patchify=True),
        'depthwise': dict(depthwise=True),
        'wider': dict(width=regime.wide),
        'inverted_bottleneck': dict(inverted=True),
        'move_up_depthwise': dict(moved_up=True),
    }.get(step, {step: True})  # gelu, fewer_activations, fewer_norms, layer_norm, separate_downsampling


def parent(step: str) -> Optional[str]:
    """The step that ``step`` changes: the previous one on the main path (None for ``resnet``); the kernel sweep's
    steps all change ``move_up_depthwise``."""
    index = ROADMAP_STEPS.index(check_step(step))
    skip = KERNEL_SWEEP if step in KERNEL_SWEEP else SIDE_BRANCHES
    return next((s for s in reversed(ROADMAP_STEPS[:index]) if s not in skip), None)


def check_step(step: str) -> str:
    if step not in ROADMAP_STEPS:
        raise ConfigError(f'unknown roadmap step {step!r}; valid, in the paper\'s order: {", ".join(ROADMAP_STEPS)}')
    return step


RegimeSpec = Union[str, Mapping[str, object]]


def check_regime(regime: RegimeSpec) -> Regime:
    """The ``Regime`` of a name in ``REGIMES`` or of a dict with its fields (a smaller path, e.g. for tests)."""
    if isinstance(regime, Mapping):
        try:
            return Regime(**{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in regime.items()})
        except TypeError as e:
            raise ConfigError(f'roadmap regime {dict(regime)}: {e}; a regime dict has the fields {Regime._fields}, '
                              '"convnext" optional') from None
    if regime not in REGIMES:
        raise ConfigError(f'unknown roadmap regime {regime!r}; valid: {", ".join(REGIMES)} or a dict with the fields '
                          f'{Regime._fields}')
    return REGIMES[regime]


def design(step: str, regime: RegimeSpec = 'resnet50') -> Design:
    """The design of ``step`` on the path of ``regime``: its parent's with the step's change applied."""
    path = check_regime(regime)
    above = parent(step)
    base = design(above, regime) if above else Design(depths=path.depths)
    return dataclasses.replace(base, **_change(step, path))


def roadmap_output_shape(step: str = 'separate_downsampling', regime: RegimeSpec = 'resnet50',
                         out_indices: Union[int, Sequence[int], None] = None) -> OutputShape:
    """The maps ``ConvNeXtRoadmap(step, regime, out_indices=out_indices)`` returns, without building it.

    Configs use it for the inputs of the neck and heads: ``neck=dict(in_channels=list(roadmap_output_shape(step,
    regime).channels))``.
    """
    return output_shape(stage_table(design(step, regime)), out_indices)


def stage_table(d: Design) -> Dict[str, Tuple[int, ...]]:
    """The design's ``depths`` and ``channels`` (of each stage's output map), as a dict arch of ``arch.py``."""
    return dict(depths=d.depths, channels=tuple(d.channels(i) for i in range(len(d.depths))))


class Published(NamedTuple):
    """The paper's ImageNet-1K top-1 (%) and GFLOPs at 224 x 224 of one step (published)."""
    top1: float
    gflops: float


# Appendix C, Table 10 (ResNet-50 regime) and Table 11 (ResNet-200 regime); 'resnet' is the modern training recipe's
# row (the original recipe's ResNet-50 / -200: 76.13 / 78.20).
PAPER: Dict[str, Dict[str, Published]] = {
    'resnet50': {step: Published(*row) for step, row in zip(ROADMAP_STEPS, (
        (78.82, 4.09), (79.36, 4.53), (79.51, 4.42), (78.28, 2.35), (80.50, 5.27), (80.64, 4.64), (79.92, 4.07),
        (80.35, 4.10), (80.57, 4.15), (80.57, 4.21), (80.47, 4.29), (80.62, 4.15), (81.27, 4.15), (81.41, 4.15),
        (81.47, 4.46), (81.97, 4.49)))},
    'resnet200': {step: Published(*row) for step, row in zip(ROADMAP_STEPS, (
        (81.14, 15.01), (81.33, 14.52), (81.59, 14.38), (80.54, 7.23), (81.85, 16.76), (82.64, 15.68),
        (82.04, 14.63), (82.32, 14.70), (82.30, 14.81), (82.27, 14.95), (82.18, 15.13), (82.19, 14.81),
        (82.71, 14.81), (83.17, 14.81), (83.35, 14.81), (83.60, 15.35)))},
}
# (regime, step) -> the GFLOPs the step's design implies where the table's value cannot hold (see the docstring)
PAPER_FLOPS_ERRATA: Dict[Tuple[str, str], float] = {('resnet50', 'layer_norm'): 4.15}


def paper_gflops(step: str, regime: str) -> float:
    """The GFLOPs the paper's design of ``step`` has: Table 10 / 11, corrected by ``PAPER_FLOPS_ERRATA``."""
    return PAPER_FLOPS_ERRATA.get((regime, step), PAPER[regime][check_step(step)].gflops)
