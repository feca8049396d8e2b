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

Set ``CONVNEXT_DENSE_NO_MIM_HOOK=1`` to turn it off for a process (``convnext_dense::`` and ``mim`` then fail as
for any unregistered package; ``import convnext_dense`` and the shipped configs work as before).
"""
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from typing import Callable, Dict, Optional

PACKAGE = 'convnext_dense'
DISABLE = 'CONVNEXT_DENSE_NO_MIM_HOOK'


def package_path() -> Optional[str]:
    """The folder ``import convnext_dense`` loads, found without importing it; None where it cannot be imported."""
    spec = importlib.util.find_spec(PACKAGE)
    return os.path.dirname(spec.origin) if spec is not None and spec.origin else None


def _register(module) -> None:
    module.MODULE2PACKAGE.setdefault(PACKAGE, PACKAGE)


def _fix_installed_path(module) -> None:
    original = module.get_installed_path
    if getattr(original, '_convnext_dense', False):
        return

    def get_installed_path(package: str) -> str:
        path = package_path() if package == PACKAGE else None
        return path or original(package)

    get_installed_path.__doc__ = original.__doc__
    get_installed_path._convnext_dense = True
    module.get_installed_path = get_installed_path


def _untag(module) -> None:
    config = module.Config
    original = config.__dict__['_dict_to_config_dict'].__func__
    if getattr(original, '_convnext_dense', False):
        return

    def _dict_to_config_dict(cfg, scope=None, has_scope=True):
        return original(cfg, None if scope == PACKAGE else scope, has_scope)

    _dict_to_config_dict._convnext_dense = True
    config._dict_to_config_dict = staticmethod(_dict_to_config_dict)


# module -> what to do to it once it has run; the names that import ``get_installed_path`` from these modules
# (``from mmengine.utils import get_installed_path`` in mmengine.config.config, mim's commands) bind the new one
PATCHES: Dict[str, Callable] = {
    'mmengine.config.utils': _register,
    'mmengine.utils': _fix_installed_path,
    'mmengine.config.config': _untag,
    'mim.utils': _fix_installed_path,
}


class _Loader(importlib.abc.Loader):
    """The real loader of a watched module, followed by its patch."""

    def __init__(self, loader: importlib.abc.Loader, patch: Callable) -> None:
        self.loader, self.patch = loader, patch

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        self.patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a watched module, the spec the other finders give, with ``_Loader``."""

    def find_spec(self, name, path=None, target=None):
        if name not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader, PATCHES[name])
        return spec


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once), and patch the watched modules a process has already imported."""
    if os.environ.get(DISABLE, '') not in ('', '0'):
        return
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
    for name, patch in PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])


install()
