"""convnext_dense: ConvNeXt (V1 and V2) for dense prediction with OpenMMLab.

``import convnext_dense`` registers the backbone and the layer-decay optimizer constructor in the
``convnext_dense`` scope and, when installed, in mmdet's and mmseg's registries.
"""
from .backbone import ARCH_SETTINGS, ConvNeXt
from .checkpoint import install_safe_checkpoint_loader
from .layer_decay import ConvNeXtLayerDecayOptimizerConstructor
from .registry import register_all

__version__ = '0.1.0'
__all__ = ['ARCH_SETTINGS', 'ConvNeXt', 'ConvNeXtLayerDecayOptimizerConstructor', '__version__']

register_all()
install_safe_checkpoint_loader()
