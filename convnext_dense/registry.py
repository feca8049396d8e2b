"""Registration of convnext_dense's modules.

Everything lands in the ``convnext_dense`` scope (children of mmengine's root registries), so any OpenMMLab
toolkit's config can name ``convnext_dense.ConvNeXt``; when mmdet or mmseg are importable the same classes are also
registered there under their plain names, so their configs can write ``type='ConvNeXt'``.
"""
import importlib

from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as ROOT_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry

from .backbone import ConvNeXt
from .layer_decay import ConvNeXtLayerDecayOptimizerConstructor

SCOPE = 'convnext_dense'
TOOLKITS = ('mmdet', 'mmseg')
MODELS = Registry('model', parent=ROOT_MODELS, scope=SCOPE)
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optim wrapper constructor', parent=ROOT_OPTIM_WRAPPER_CONSTRUCTORS, scope=SCOPE)


def _registries():
    """(models, optimizer-constructor) registry pairs: ours, then those of each importable toolkit."""
    yield MODELS, OPTIM_WRAPPER_CONSTRUCTORS
    for toolkit in TOOLKITS:
        try:
            module = importlib.import_module(f'{toolkit}.registry')
        except ModuleNotFoundError:
            continue
        yield module.MODELS, module.OPTIM_WRAPPER_CONSTRUCTORS


def register_all() -> None:
    """Register the backbone and the optimizer constructor in our scope and in each importable toolkit."""
    for models, constructors in _registries():
        for registry, cls in ((models, ConvNeXt), (constructors, ConvNeXtLayerDecayOptimizerConstructor)):
            if cls.__name__ not in registry.module_dict:
                registry.register_module(module=cls)
