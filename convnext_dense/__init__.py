"""convnext_dense: ConvNeXt (V1 and V2) for dense prediction, a model core in plain PyTorch with OpenMMLab on top.

The core needs only PyTorch (``import convnext_dense`` imports no OpenMMLab package where mmengine is absent): the
backbones (``ConvNeXt``, ``ConvNeXtRoadmap``, with mmengine's ``init_cfg`` / ``init_weights`` protocol), every common
checkpoint layout (``load_backbone_checkpoint``), the arch table and the layer-decay rule as plain optimizer groups
(``layer_decay_param_groups``). See docs/without_openmmlab.md.

Where mmengine can be imported, ``import convnext_dense`` (or ``custom_imports = dict(imports=['convnext_dense'])``
in a config) also:

* registers the backbones, the layer-decay optimizer constructor, the hooks, loops and FSDP strategy in the
  ``convnext_dense`` scope and, when installed, in mmdet's and mmseg's registries (``registry.register_all``);
* makes mmengine read local checkpoint files, http(s) URLs and hf:// names (downloaded once into a cache) through
  the safe reader (``install_safe_checkpoint_loader``; ``uninstall_safe_checkpoint_loader`` undoes it).

The layout, bottom to top (each folder uses only those below it): ``utils``, ``specs`` (the tables), ``checkpoint``,
``models`` (the PyTorch core); ``datasets``, ``engine`` (OpenMMLab); ``tools``, ``registry``.
"""
import importlib.util

from .checkpoint import load_backbone_checkpoint
from .models import ConvNeXt, ConvNeXtRoadmap
from .models.layer_decay import layer_decay_param_groups
from .specs.arch import ARCH_SETTINGS, OutputShape, output_shape
from .specs.roadmap import ROADMAP_STEPS, roadmap_output_shape
from .version import __version__

__all__ = ['ARCH_SETTINGS', 'ConvNeXt', 'ConvNeXtRoadmap', 'OutputShape', 'ROADMAP_STEPS', '__version__',
           'layer_decay_param_groups', 'load_backbone_checkpoint', 'output_shape', 'roadmap_output_shape']

if importlib.util.find_spec('mmengine') is not None:
    from .engine.checkpoint_loader import install_safe_checkpoint_loader, uninstall_safe_checkpoint_loader
    from .engine.optimizers.layer_decay_optimizer_constructor import ConvNeXtLayerDecayOptimizerConstructor
    from .registry import register_all

    __all__ += ['ConvNeXtLayerDecayOptimizerConstructor', 'install_safe_checkpoint_loader',
                'uninstall_safe_checkpoint_loader']
    register_all()
    install_safe_checkpoint_loader()
