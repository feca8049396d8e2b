"""The ConvNeXt backbones in plain PyTorch: mmengine's init protocol without mmengine (``base``), layers, the
multi-scale backbone, the roadmap's backbones, the layer-decay rule and its optimizer groups. ``heads/`` (toolkit
heads) and ``follow`` (a builder that imports mmengine when called) are the OpenMMLab parts, loaded only through the
registry."""
from .backbone import ConvNeXt
from .roadmap.backbone import ConvNeXtRoadmap

__all__ = ['ConvNeXt', 'ConvNeXtRoadmap']
