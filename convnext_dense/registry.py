"""Registration of convnext_dense's modules.

Everything lands in the ``convnext_dense`` scope (children of mmengine's root registries), so any OpenMMLab
toolkit's config can name ``convnext_dense.ConvNeXt``; when mmdet or mmseg are importable the same classes are also
registered there under their plain names, so their configs can write ``type='ConvNeXt'``. Modules that need a
toolkit (``linear_head``, mmseg) register themselves in our scope when a config first names them.
"""
import importlib
import importlib.util

from mmengine.registry import FUNCTIONS as ROOT_FUNCTIONS
from mmengine.registry import HOOKS as ROOT_HOOKS
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as ROOT_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import STRATEGIES as ROOT_STRATEGIES
from mmengine.registry import Registry

from .backbone import ConvNeXt
from .follow import FollowBackbone
from .fsdp import FSDPStrategy, wrap_convnext_blocks
from .hooks import AtomicCheckpointHook, CheckpointFitHook, DatasetCheckHook, NonFiniteLossHook
from .layer_decay import ConvNeXtLayerDecayOptimizerConstructor
from .preemption import PreemptionHook
from .roadmap import ConvNeXtRoadmap
from .train_state import ExactResumeHook
from .watchdog import WatchdogHook

SCOPE = 'convnext_dense'
TOOLKITS = ('mmdet', 'mmseg')
# locations: imported on the first look-up, so `import convnext_dense` imports no toolkit's model code; the linear
# head only where mmseg is installed (find_spec imports nothing). Every registry names at least this module: one with
# no locations makes mmengine look for `convnext_dense.utils` and warn "convnext_dense is not installed" on each
# look-up once the package is in MODULE2PACKAGE (the installed package's mim hook puts it there).
HERE = [__name__]
MODELS = Registry('model', parent=ROOT_MODELS, scope=SCOPE,
                  locations=HERE + (['convnext_dense.linear_head'] if importlib.util.find_spec('mmseg') else []))
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optim wrapper constructor', parent=ROOT_OPTIM_WRAPPER_CONSTRUCTORS, scope=SCOPE,
                                      locations=HERE)
HOOKS = Registry('hook', parent=ROOT_HOOKS, scope=SCOPE, locations=HERE)
STRATEGIES = Registry('strategy', parent=ROOT_STRATEGIES, scope=SCOPE, locations=HERE)
FUNCTIONS = Registry('function', parent=ROOT_FUNCTIONS, scope=SCOPE, locations=HERE)

# What each registry holds; the toolkits' registries have the same names.
CLASSES = {
    'MODELS': (ConvNeXt, ConvNeXtRoadmap, FollowBackbone),
    'OPTIM_WRAPPER_CONSTRUCTORS': (ConvNeXtLayerDecayOptimizerConstructor,),
    'HOOKS': (AtomicCheckpointHook, NonFiniteLossHook, CheckpointFitHook, DatasetCheckHook, ExactResumeHook,
              PreemptionHook, WatchdogHook),
    'STRATEGIES': (FSDPStrategy,),  # mmengine's registries only: the toolkits have none of these two
    'FUNCTIONS': (wrap_convnext_blocks,),
}


def _registries():
    """{registry name: registry}: ours, then those of each importable toolkit."""
    yield dict(MODELS=MODELS, OPTIM_WRAPPER_CONSTRUCTORS=OPTIM_WRAPPER_CONSTRUCTORS, HOOKS=HOOKS,
               STRATEGIES=STRATEGIES, FUNCTIONS=FUNCTIONS)
    for toolkit in TOOLKITS:
        try:
            module = importlib.import_module(f'{toolkit}.registry')
        except ModuleNotFoundError:
            continue
        yield {name: getattr(module, name) for name in CLASSES if hasattr(module, name)}


def register_all() -> None:
    """Register the backbone, the optimizer constructor and the hooks in our scope and in each importable toolkit."""
    for registries in _registries():
        for name, registry in registries.items():
            for cls in CLASSES[name]:
                if cls.__name__ not in registry.module_dict:
                    registry.register_module(module=cls)
