"""Registration of convnext_dense's modules.

Everything lands in the ``convnext_dense`` scope (children of mmengine's root registries), so any OpenMMLab
toolkit's config can name ``convnext_dense.ConvNeXt``; when mmdet or mmseg are importable the same classes are also
registered there under their plain names, so their configs can write ``type='ConvNeXt'``.
"""
import importlib

from mmengine.registry import HOOKS as ROOT_HOOKS
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as ROOT_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry

from .backbone import ConvNeXt
from .follow import FollowBackbone
from .hooks import AtomicCheckpointHook, CheckpointFitHook, DatasetCheckHook, NonFiniteLossHook
from .layer_decay import ConvNeXtLayerDecayOptimizerConstructor
from .roadmap import ConvNeXtRoadmap

SCOPE = 'convnext_dense'
TOOLKITS = ('mmdet', 'mmseg')
MODELS = Registry('model', parent=ROOT_MODELS, scope=SCOPE)
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optim wrapper constructor', parent=ROOT_OPTIM_WRAPPER_CONSTRUCTORS, scope=SCOPE)
HOOKS = Registry('hook', parent=ROOT_HOOKS, scope=SCOPE)

# What each registry holds; the toolkits' registries have the same names.
CLASSES = {
    'MODELS': (ConvNeXt, ConvNeXtRoadmap, FollowBackbone),
    'OPTIM_WRAPPER_CONSTRUCTORS': (ConvNeXtLayerDecayOptimizerConstructor,),
    'HOOKS': (AtomicCheckpointHook, NonFiniteLossHook, CheckpointFitHook, DatasetCheckHook),
}


def _registries():
    """{registry name: registry}: ours, then those of each importable toolkit."""
    yield dict(MODELS=MODELS, OPTIM_WRAPPER_CONSTRUCTORS=OPTIM_WRAPPER_CONSTRUCTORS, HOOKS=HOOKS)
    for toolkit in TOOLKITS:
        try:
            module = importlib.import_module(f'{toolkit}.registry')
        except ModuleNotFoundError:
            continue
        yield {name: getattr(module, name) for name in CLASSES}


def register_all() -> None:
    """Register the backbone, the optimizer constructor and the hooks in our scope and in each importable toolkit."""
    for registries in _registries():
        for name, classes in CLASSES.items():
            for cls in classes:
                if cls.__name__ not in registries[name].module_dict:
                    registries[name].register_module(module=cls)
