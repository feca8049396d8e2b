"""The package's shape: no two modules import each other, modules stay small, and every shipped config declares the
run-time guarantees and reads the backbone's outputs instead of the arch table."""
import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

from conftest import REPO, read_config

PACKAGE = REPO / 'convnext_dense'
MAX_LINES = 300
SHIPPED_CONFIGS = sorted(p for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts)
HOOKS = ('convnext_dense.DatasetCheckHook', 'convnext_dense.NonFiniteLossHook', 'convnext_dense.CheckpointFitHook',
         'convnext_dense.ExactResumeHook', 'convnext_dense.PreemptionHook', 'convnext_dense.WatchdogHook')


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports_of(path: Path, modules: Set[str]) -> Set[str]:
    """The package modules that ``path`` imports anywhere in its code (module level or inside functions)."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            # `from PACKAGE import module` imports that module; `from MODULE import name` imports MODULE
            found.update(f'{base}.{a.name}' if f'{base}.{a.name}' in modules else base for a in node.names)
    return found & modules


def test_no_two_modules_import_each_other():
    paths = sorted(PACKAGE.rglob('*.py'))
    modules = {module_name(p) for p in paths}
    graph: Dict[str, Set[str]] = {module_name(p): imports_of(p, modules) - {module_name(p)} for p in paths}
    assert graph['convnext_dense.models.backbone'] >= {'convnext_dense.specs.arch', 'convnext_dense.checkpoint.loading'}

    cycles: List[List[str]] = []
    state: Dict[str, str] = {}

    def visit(module: str, path: List[str]) -> None:
        state[module] = 'open'
        for target in sorted(graph[module]):
            if state.get(target) == 'open':
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 'done'

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_modules_are_small():
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in PACKAGE.rglob('*.py')}
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}


@pytest.mark.usefixtures('default_paths')  # parsed as test_coco and test_ade20k parse them: once
@pytest.mark.parametrize('path', SHIPPED_CONFIGS, ids=lambda p: str(p.relative_to(REPO / 'configs')))
def test_every_shipped_config_declares_the_guarantees(path):
    """Whatever tool builds a Runner from the config gets crash-safe checkpoints, the checks, exact resume, preemption
    and the watchdog."""
    cfg = read_config(path)
    assert cfg.default_hooks.checkpoint.type == 'convnext_dense.AtomicCheckpointHook'
    assert set(HOOKS) <= {hook.type for hook in cfg.custom_hooks}
    assert 'convnext_dense' in cfg.custom_imports.imports
    assert 'ARCH_SETTINGS' not in path.read_text()  # configs read output_shape, which follows out_indices too
