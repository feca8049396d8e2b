"""convnext_dense: ConvNeXt (V1 and V2) for dense prediction with OpenMMLab.

``import convnext_dense`` (or ``custom_imports = dict(imports=['convnext_dense'])`` in a config) does two things:

* registers the backbone, the layer-decay optimizer constructor and the reliability hooks in the ``convnext_dense``
  scope and, when installed, in mmdet's and mmseg's registries (``registry.register_all``);
* checks the dataset configs of a Runner that holds ``DatasetCheckHook`` before it builds the datasets
  (``prebuild.install_prebuild_checks``; ``prebuild.uninstall_prebuild_checks`` undoes it);
* makes mmengine read local checkpoint files, http(s) URLs and hf:// names (downloaded once into a cache) through
  the safe reader (``checkpoint.install_safe_checkpoint_loader``; ``checkpoint.uninstall_safe_checkpoint_loader``
  undoes it).
"""
from .arch import ARCH_SETTINGS, OutputShape, output_shape
from .backbone import ConvNeXt
from .checkpoint import install_safe_checkpoint_loader, load_backbone_checkpoint, uninstall_safe_checkpoint_loader
from .layer_decay import ConvNeXtLayerDecayOptimizerConstructor
from .prebuild import install_prebuild_checks
from .registry import register_all
from .roadmap import ConvNeXtRoadmap
from .roadmap_arch import ROADMAP_STEPS, roadmap_output_shape
from .version import __version__

__all__ = ['ARCH_SETTINGS', 'ConvNeXt', 'ConvNeXtLayerDecayOptimizerConstructor', 'ConvNeXtRoadmap', 'OutputShape',
           'ROADMAP_STEPS', '__version__', 'install_safe_checkpoint_loader', 'load_backbone_checkpoint', 'output_shape',
           'roadmap_output_shape', 'uninstall_safe_checkpoint_loader']

register_all()
install_safe_checkpoint_loader()
install_prebuild_checks()
