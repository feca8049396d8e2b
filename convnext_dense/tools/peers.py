"""The implementations a benchmark compares ours with, holding the same weights: timm's ConvNeXt (``features_only``,
its stage maps passed through our output norms) and mmpretrain's (what the stock mmdet / mmseg configs use).

Neither is a dependency of the project (``pip install convnext_dense[bench]`` brings both). A peer that is missing or
fails to import is reported as skipped with the reason, never as a crash. mmpretrain 1.2 fails to import next to
transformers 5.x; its multimodal switch is turned off in this process before its models are imported (nothing is
installed or changed outside the process). timm imports torchvision; where only an inert stand-in for torchvision
could be imported (``torchvision.INERT_STANDIN``), results say so.
"""
import copy
import re
import sys
from typing import Callable, Optional, Tuple

from torch import Tensor, nn

from ..checkpoint.loading import map_state_dict
from ..models.backbone import ConvNeXt


def import_timm() -> Tuple[Optional[object], str]:
    """(timm, '') or (None, why it is skipped)."""
    try:
        import timm
    except Exception as e:  # ImportError, or torchvision's RuntimeError of a CUDA wheel next to a CPU torch
        return None, f'timm not importable: {type(e).__name__}: {str(e).splitlines()[0][:160]}'
    return timm, ''


def import_mmpretrain() -> Tuple[Optional[object], str]:
    """(mmpretrain.models, '') or (None, why it is skipped), with mmpretrain's multimodal imports switched off."""
    try:
        import mmpretrain.utils
        import mmpretrain.utils.dependency
        mmpretrain.utils.WITH_MULTIMODAL = mmpretrain.utils.dependency.WITH_MULTIMODAL = False
        import mmpretrain.models
    except Exception as e:
        return None, f'mmpretrain not importable: {type(e).__name__}: {str(e).splitlines()[0][:160]}'
    return mmpretrain.models, ''


def torchvision_label() -> str:
    """'torchvision stand-in' when the imported torchvision is the inert stand-in, else ''."""
    return 'torchvision stand-in' if getattr(sys.modules.get('torchvision'), 'INERT_STANDIN', False) else ''


def copy_weights(ours: ConvNeXt, peer: nn.Module, rename: Callable[[str], str] = lambda k: k) -> None:
    """Load ``ours``' weights into ``peer``: each peer key, renamed by ``rename`` to its model's names, is mapped to
    ours by the checkpoint loader's layout table (the one place that knows the correspondence)."""
    peer_state = peer.state_dict()
    layout = map_state_dict({'state_dict': {rename(k): v for k, v in peer_state.items()}}, '<peer>', '').layout
    if layout is None:
        raise ValueError(f'{type(peer).__name__} has no ConvNeXt layout the loader knows')
    ours_state = ours.state_dict()
    peer.load_state_dict({k: ours_state[layout.convert(rename(k), v)[0]].reshape(v.shape)
                          for k, v in peer_state.items()})


class TimmStages(nn.Module):
    """timm's ``features_only`` ConvNeXt with each stage map passed through ours' output norm ``norm{i}``."""

    def __init__(self, features: nn.Module, ours: ConvNeXt) -> None:
        super().__init__()
        self.features = features
        self.norms = nn.ModuleList(copy.deepcopy(getattr(ours, f'norm{i}')) for i in ours.out_indices)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        return tuple(norm(f) for norm, f in zip(self.norms, self.features(x)))


def timm_like(ours: ConvNeXt, arch: str) -> Tuple[Optional[nn.Module], str]:
    """(TimmStages holding ``ours``' weights, '') or (None, why it is skipped)."""
    timm, why = import_timm()
    if timm is None:
        return None, why
    features = timm.create_model(f'convnext_{arch}', features_only=True, pretrained=False,
                                 out_indices=ours.out_indices)
    # FeatureListNet flattens the first level of names (stem_0, stages_1): back to timm's model names
    copy_weights(ours, features, lambda k: re.sub(r'^(stem|stages)_', r'\1.', k))
    return TimmStages(features, ours), ''


def mmpretrain_like(ours: ConvNeXt, arch: str, with_cp: bool = False) -> Tuple[Optional[nn.Module], str]:
    """(mmpretrain's ConvNeXt holding ``ours``' weights, returning every stage through its norms, '')."""
    models, why = import_mmpretrain()
    if models is None:
        return None, why
    peer = models.ConvNeXt(arch, out_indices=ours.out_indices, gap_before_final_norm=False, with_cp=with_cp)
    copy_weights(ours, peer)
    return peer, ''
