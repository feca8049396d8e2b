"""Let mmengine and openmim find convnext_dense by name: ``_base_ = 'convnext_dense::coco/cascade_convnext_t.py'``,
``mim train convnext_dense CONFIG``, ``mim search convnext_dense``.

Imported at interpreter start by ``convnext_dense_mim.pth``, which installing the package puts into site-packages
(wheel and editable installs alike). It loads nothing at start-up: it puts a finder on ``sys.meta_path`` that acts
only when a process imports one of the modules in ``PATCHES``, right after that module has run:

* ``mmengine.config.utils``: registers the package in ``MODULE2PACKAGE``, the list of packages whose configs
  mmengine resolves with ``PKG::``, which it reads while parsing a config, before any ``custom_imports`` run;
* ``mmengine.utils`` and ``mim.utils``: their ``get_installed_path`` returns, for this package, the folder Python
  imports it from. Both would answer ``site-packages/convnext_dense`` (the distribution's location joined with its
  name), which an editable install (PEP 660) does not have: there the package, and its ``.mim`` folder of links to
  ``configs/`` and ``tools/``, stay in the checkout;
* ``mmengine.config.config``: what a config inherits through ``convnext_dense::`` is not tagged with
  ``_scope_='convnext_dense'``. mmengine tags each outermost typed dict of a ``PKG::`` base with ``PKG``, which is
  right for a toolkit (``mmdet::``: build it from mmdet's registries) and wrong for a plugin of two toolkits: our
  registry scope holds only our classes, so a tagged ``CascadeRCNN`` raised ``KeyError``, and a tagged pipeline
  step fell back to mmengine's root registry (mmcv's ``LoadAnnotations`` instead of mmdet's). Untagged, every dict
  is built in the scope of the config that uses it (its ``default_scope``: mmdet or mmseg), as it is from a clone.
  This one wraps a private method of mmengine's ``Config``; docs/openmmlab_internals.md lists it.

Every patch fails soft, because this runs in every Python process of the environment: where mmengine or mim no
longer have what a patch changes (a renamed private method, other parameters), that patch changes nothing, the
module imports as it would without the hook, the other patches still apply, and one ``RuntimeWarning`` per process
names what was not patched and why.

Set ``CONVNEXT_DENSE_NO_MIM_HOOK=1`` to turn it off for a process (``convnext_dense::`` and ``mim`` then fail as
for any unregistered package; ``import convnext_dense`` and the shipped configs work as before).
"""
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from types import ModuleType
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Set

PACKAGE = 'convnext_dense'
DISABLE = 'CONVNEXT_DENSE_NO_MIM_HOOK'
MARK = '_convnext_dense'  # set on each replacement function: a second install() leaves it as it is


def package_path() -> Optional[str]:
    """The folder ``import convnext_dense`` loads, found without importing it; None where it cannot be imported."""
    spec = importlib.util.find_spec(PACKAGE)
    return os.path.dirname(spec.origin) if spec is not None and spec.origin else None


def _check_parameters(function: Callable, names: Sequence[str]) -> None:
    """``TypeError`` unless ``function``'s first parameters are ``names``: the ones a replacement passes on."""
    import inspect  # not at interpreter start: a patch runs once mmengine or mim, which import it, have run
    found = list(inspect.signature(function).parameters)
    if found[:len(names)] != list(names):
        raise TypeError(f'its parameters are ({", ".join(found)}), not ({", ".join(names)}, ...)')


def _register(module: ModuleType) -> None:
    packages = module.MODULE2PACKAGE
    if not isinstance(packages, dict):
        raise TypeError(f'it is a {type(packages).__name__}, not a dict')
    packages.setdefault(PACKAGE, PACKAGE)


def _fix_installed_path(module: ModuleType) -> None:
    original = module.get_installed_path
    if getattr(original, MARK, False):
        return
    _check_parameters(original, ('package',))

    def get_installed_path(package: str, *args, **kwargs) -> str:
        path = package_path() if package == PACKAGE else None
        return path or original(package, *args, **kwargs)

    get_installed_path.__doc__ = original.__doc__
    setattr(get_installed_path, MARK, True)
    module.get_installed_path = get_installed_path


def _untag(module: ModuleType) -> None:
    config = module.Config
    method = vars(config).get('_dict_to_config_dict')
    if not isinstance(method, staticmethod):
        raise AttributeError(f'Config has no staticmethod _dict_to_config_dict (found {type(method).__name__})')
    original = method.__func__
    if getattr(original, MARK, False):
        return
    _check_parameters(original, ('cfg', 'scope'))

    def _dict_to_config_dict(cfg, scope=None, *args, **kwargs):
        return original(cfg, None if scope == PACKAGE else scope, *args, **kwargs)

    setattr(_dict_to_config_dict, MARK, True)
    config._dict_to_config_dict = staticmethod(_dict_to_config_dict)


class Patch(NamedTuple):
    target: str  # what it changes in its module, named in the warning when it fails
    apply: Callable[[ModuleType], None]


# module -> what to do to it once it has run; the names that import ``get_installed_path`` from these modules
# (``from mmengine.utils import get_installed_path`` in mmengine.config.config, mim's commands) bind the new one
PATCHES: Dict[str, Patch] = {
    'mmengine.config.utils': Patch('MODULE2PACKAGE', _register),
    'mmengine.utils': Patch('get_installed_path', _fix_installed_path),
    'mmengine.config.config': Patch('Config._dict_to_config_dict', _untag),
    'mim.utils': Patch('get_installed_path', _fix_installed_path),
}
_warned: Set[str] = set()  # the patches this process has warned about


def _apply(name: str, module: ModuleType) -> None:
    """Patch the watched module ``name``; where that fails, leave it as it is and warn (once per process)."""
    patch = PATCHES[name]
    try:
        patch.apply(module)
    except Exception as error:  # whatever mmengine or mim changed: their import must not fail because of us
        _warn_once(f'{name}.{patch.target}', error)


def _warn_once(what: str, error: Exception) -> None:
    if what in _warned:
        return
    _warned.add(what)
    message = (f'convnext_dense_mim: did not patch {what} ({type(error).__name__}: {error}); it is left as '
               f'mmengine/mim define it, so `convnext_dense::` configs or `mim ... convnext_dense` may not work '
               f'with this version. Set {DISABLE}=1 to turn the convnext_dense start-up hook (and this warning) off.')
    try:
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    except Exception:  # warnings made errors (-W error): the import still must not fail
        print(f'RuntimeWarning: {message}', file=sys.stderr)


class _Loader(importlib.abc.Loader):
    """The real loader of a watched module, followed by its patch."""

    def __init__(self, loader: importlib.abc.Loader, name: str) -> None:
        self.loader, self.name = loader, name

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)  # its errors are the import's own
        _apply(self.name, module)

    def __getattr__(self, name: str):
        # the real loader's other methods (get_source, is_package, resource readers), for whoever inspects a module
        if name == 'loader':  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a watched module, the spec the other finders give, with ``_Loader``."""

    def find_spec(self, name, path=None, target=None):
        if name not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader, name)
        return spec


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once), and patch the watched modules a process has already imported."""
    if os.environ.get(DISABLE, '') not in ('', '0'):
        return
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    for name in PATCHES:
        if name in sys.modules:
            _apply(name, sys.modules[name])


install()
