"""The ConvNeXt backbones in plain PyTorch: layers, the multi-scale backbone, the roadmap's backbones, the
layer-decay rule. ``heads/`` (toolkit heads) and ``follow`` (a builder) are the OpenMMLab parts, loaded only
through the registry."""
from .backbone import ConvNeXt
from .roadmap.backbone import ConvNeXtRoadmap

__all__ = ['ConvNeXt', 'ConvNeXtRoadmap']
