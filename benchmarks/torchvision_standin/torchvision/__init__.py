"""An inert stand-in for torchvision, for benchmarking timm and mmpretrain on a machine whose only torchvision wheel
cannot load next to its torch (a CUDA build beside a CPU torch fails with ``operator torchvision::nms does not
exist``).

timm and mmpretrain import torchvision's transforms, ops and datasets at import time, but the ConvNeXt models they
build never call them. Every ``torchvision.*`` module resolves to an inert module whose attributes are placeholder
classes: importing and naming them works, calling one raises. Results that used it say so
(``torchvision.INERT_STANDIN``). Put this folder (not the package) on PYTHONPATH, never into an environment.
"""
import importlib.abc
import importlib.machinery
import sys
import types

__version__ = '0.0+inert'
INERT_STANDIN = True


class _InertMeta(type):
    def __getattr__(cls, name: str) -> type:
        if name.startswith('__'):
            raise AttributeError(name)
        return _placeholder(f'{cls.__qualname__}.{name}')

    def __call__(cls, *args, **kwargs):
        raise RuntimeError(f'{cls.__qualname__} is part of an inert torchvision stand-in and cannot be used')


_PLACEHOLDERS: dict = {}


def _placeholder(name: str) -> type:
    if name not in _PLACEHOLDERS:
        _PLACEHOLDERS[name] = _InertMeta(name, (), {'__qualname__': name})
    return _PLACEHOLDERS[name]


class _InertModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        return _placeholder(f'{self.__name__}.{name}')


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.startswith('torchvision.'):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _InertModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module) -> None:
        pass


sys.meta_path.insert(0, _Finder())


def __getattr__(name: str):
    if name.startswith('__'):
        raise AttributeError(name)
    return _placeholder(f'torchvision.{name}')
