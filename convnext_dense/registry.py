"""Registration of convnext_dense's modules.

Everything lands in the ``convnext_dense`` scope (children of mmengine's root registries), so any OpenMMLab
toolkit's config can name ``convnext_dense.ConvNeXt``; when mmdet or mmseg are importable the same classes are also
registered there under their plain names, so their configs can write ``type='ConvNeXt'``. Heads that need a toolkit
(``models/heads``: mmseg) are registered in our scope on its first look-up, and only where that toolkit is installed.

This module is the top of the package: it imports the model core and the OpenMMLab integration, and nothing inside
the package imports it (``convnext_dense/__init__.py`` runs ``register_all`` where mmengine can be imported).
"""
import importlib
import importlib.util

from mmengine.registry import DATA_SAMPLERS as ROOT_DATA_SAMPLERS
from mmengine.registry import FUNCTIONS as ROOT_FUNCTIONS
from mmengine.registry import HOOKS as ROOT_HOOKS
from mmengine.registry import LOOPS as ROOT_LOOPS
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as ROOT_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import STRATEGIES as ROOT_STRATEGIES
from mmengine.registry import Registry

from .engine.hooks import RELIABILITY_HOOKS
from .engine.loops import CHECKED_LOOPS
from .engine.optimizers.layer_decay_optimizer_constructor import ConvNeXtLayerDecayOptimizerConstructor
from .engine.strategies.fsdp import FSDPStrategy, wrap_convnext_blocks
from .engine.train_state import ResumableBatchSampler
from .models import ConvNeXt, ConvNeXtRoadmap
from .models.follow import FollowBackbone
from .utils.toolkits import TOOLKITS

SCOPE = 'convnext_dense'
# Every registry names at least this module as its location: one with no locations makes mmengine look for
# `convnext_dense.utils.register_all_modules` and warn "convnext_dense is not installed" on each look-up once the
# package is in MODULE2PACKAGE (the installed package's mim hook puts it there).
HERE = [__name__]
# toolkit heads: {class name: (toolkit, module)}, imported on the first look-up, so `import convnext_dense` imports
# no toolkit's model code, and only where the toolkit is installed (find_spec imports nothing)
TOOLKIT_MODELS = {'DINOv3LinearHead': ('mmseg', 'convnext_dense.models.heads.linear_head')}


class ModelRegistry(Registry):
    """Our ``MODELS``: the toolkit heads of ``TOOLKIT_MODELS`` are registered when mmengine first imports the
    registry's locations (``import_from_location``, which every look-up calls)."""

    def import_from_location(self) -> None:
        super().import_from_location()
        for name, (toolkit, module) in TOOLKIT_MODELS.items():
            if name not in self.module_dict and importlib.util.find_spec(toolkit):
                self.register_module(module=getattr(importlib.import_module(module), name))


MODELS = ModelRegistry('model', parent=ROOT_MODELS, scope=SCOPE, locations=HERE)
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optim wrapper constructor', parent=ROOT_OPTIM_WRAPPER_CONSTRUCTORS, scope=SCOPE,
                                      locations=HERE)
HOOKS = Registry('hook', parent=ROOT_HOOKS, scope=SCOPE, locations=HERE)
LOOPS = Registry('loop', parent=ROOT_LOOPS, scope=SCOPE, locations=HERE)
DATA_SAMPLERS = Registry('data sampler', parent=ROOT_DATA_SAMPLERS, scope=SCOPE, locations=HERE)
STRATEGIES = Registry('strategy', parent=ROOT_STRATEGIES, scope=SCOPE, locations=HERE)
FUNCTIONS = Registry('function', parent=ROOT_FUNCTIONS, scope=SCOPE, locations=HERE)

# What each registry holds; the toolkits' registries have the same names.
CLASSES = {
    'MODELS': (ConvNeXt, ConvNeXtRoadmap, FollowBackbone),
    'OPTIM_WRAPPER_CONSTRUCTORS': (ConvNeXtLayerDecayOptimizerConstructor,),
    'HOOKS': RELIABILITY_HOOKS,
    'LOOPS': CHECKED_LOOPS,
    'DATA_SAMPLERS': (ResumableBatchSampler,),
    'STRATEGIES': (FSDPStrategy,),  # mmengine's registries only: the toolkits have none of these two
    'FUNCTIONS': (wrap_convnext_blocks,),
}


def _registries():
    """{registry name: registry}: ours, then those of each importable toolkit."""
    yield dict(MODELS=MODELS, OPTIM_WRAPPER_CONSTRUCTORS=OPTIM_WRAPPER_CONSTRUCTORS, HOOKS=HOOKS, LOOPS=LOOPS,
               DATA_SAMPLERS=DATA_SAMPLERS, STRATEGIES=STRATEGIES, FUNCTIONS=FUNCTIONS)
    for toolkit in TOOLKITS:
        try:
            module = importlib.import_module(f'{toolkit}.registry')
        except ModuleNotFoundError:
            continue
        yield {name: getattr(module, name) for name in CLASSES if hasattr(module, name)}


def register_all() -> None:
    """Register the backbone, the optimizer constructor, the hooks, loops and batch sampler in our scope and in each
    importable toolkit."""
    for registries in _registries():
        for name, registry in registries.items():
            for cls in CLASSES[name]:
                if cls.__name__ not in registry.module_dict:
                    registry.register_module(module=cls)
