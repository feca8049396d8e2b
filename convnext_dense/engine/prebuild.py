"""A stage before the Runner builds its datasets, for ``DatasetCheckHook``'s checks of the dataset configs.

mmengine's ``Runner.train`` / ``val`` / ``test`` build the datasets of their loops before the first hook runs
(``before_run``), so a missing data root or annotation file would fail inside pycocotools or ``os.scandir`` with a
traceback, before any check could speak. ``install_prebuild_checks`` (run by ``import convnext_dense``) wraps these
three methods: each first calls ``before_build(runner, modes)`` of every ``DatasetCheckHook`` the Runner holds, with
the loops it is about to build. Runners without that hook (configs that do not declare it) are untouched, and
nothing else changes: the datasets stay the toolkits' own classes, unwrapped, so the inferencers and ``--tta`` read
their pipelines as usual. ``uninstall_prebuild_checks`` undoes it.
"""
import functools
from typing import Callable, Dict, Tuple

from mmengine.runner import Runner

from .hooks.dataset_check_hook import DatasetCheckHook

# The loops each Runner method builds; 'val' only where the Runner has a validation loop.
MODES: Dict[str, Tuple[str, ...]] = {'train': ('train', 'val'), 'val': ('val',), 'test': ('test',)}
_ORIGINALS: Dict[str, Callable] = {}


def _checked(method: Callable, modes: Tuple[str, ...]) -> Callable:
    @functools.wraps(method)
    def run(self: Runner, *args, **kwargs):
        built = tuple(mode for mode in modes if getattr(self, f'_{mode}_loop') is not None)
        for hook in self.hooks:
            if isinstance(hook, DatasetCheckHook):
                hook.before_build(self, built)
        return method(self, *args, **kwargs)
    return run


def install_prebuild_checks() -> None:
    """Make ``Runner.train``, ``val`` and ``test`` call ``DatasetCheckHook.before_build`` first (idempotent)."""
    for name, modes in MODES.items():
        if name not in _ORIGINALS:
            _ORIGINALS[name] = getattr(Runner, name)
            setattr(Runner, name, _checked(_ORIGINALS[name], modes))


def uninstall_prebuild_checks() -> None:
    """Restore mmengine's ``Runner.train``, ``val`` and ``test``."""
    for name in list(_ORIGINALS):
        setattr(Runner, name, _ORIGINALS.pop(name))
