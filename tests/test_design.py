"""The package's shape: each folder imports only the folders below it, no two modules import each other, modules stay
small, registration sits at the top, the public names (old import paths included) stay, and every shipped config
declares the run-time guarantees and reads the backbone's outputs instead of the arch table."""
import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

import convnext_dense
from conftest import REPO, read_config
from convnext_dense.engine import loops
from convnext_dense.engine.hooks import RELIABILITY_HOOKS

PACKAGE = REPO / 'convnext_dense'
MAX_LINES = 300
SHIPPED_CONFIGS = sorted(p for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts)
# Bottom to top: a module may import its own folder and the folders of lower levels. The model core (utils, specs,
# checkpoint, models) needs only PyTorch; datasets and engine are the OpenMMLab integration; tools and the
# registration sit on top. testing/ and synthetic/ serve tests, benchmarks and the demos.
LEVELS = {
    'version': 0, 'utils': 0,
    'specs': 1,
    'checkpoint': 2,
    'models': 3,
    'datasets': 4, 'testing': 4, 'synthetic': 4,
    'engine': 5,
    'tools': 6,
    'registry': 7, 'class_checks': 7,  # class_checks: the old path of datasets.class_checks, kept for users
    '__init__': 8,
}


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


def import_graph() -> Dict[str, Set[str]]:
    """{module: the package modules it imports}, for every module of the package."""
    paths = sorted(PACKAGE.rglob('*.py'))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) - {module_name(p)} for p in paths}


def folder(module: str) -> str:
    """The first part below the package: its folder, or a module at the top ('__init__' for the package)."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else '__init__'


def test_each_folder_imports_only_the_folders_below_it():
    graph = import_graph()
    assert {folder(module) for module in graph} == set(LEVELS)
    upward = {module: sorted(t for t in targets if folder(t) != folder(module)
                             and LEVELS[folder(t)] >= LEVELS[folder(module)]) for module, targets in graph.items()}
    assert {module: targets for module, targets in upward.items() if targets} == {}
    # registration at the top: nothing inside the package imports it
    assert [module for module, targets in graph.items() if 'convnext_dense.registry' in targets] == ['convnext_dense']


def test_public_names_and_old_import_paths():
    from convnext_dense.class_checks import fit_classes  # the own-data templates import it from there
    from convnext_dense.datasets.class_checks import fit_classes as moved
    from convnext_dense.models import ConvNeXt, ConvNeXtRoadmap
    assert fit_classes is moved
    assert convnext_dense.ConvNeXt is ConvNeXt and convnext_dense.ConvNeXtRoadmap is ConvNeXtRoadmap
    for name in ('load_backbone_checkpoint', 'ConvNeXtLayerDecayOptimizerConstructor', 'install_safe_checkpoint_loader',
                 'uninstall_safe_checkpoint_loader', 'output_shape', 'roadmap_output_shape', 'ARCH_SETTINGS'):
        assert name in convnext_dense.__all__ and hasattr(convnext_dense, name), name


def test_no_two_modules_import_each_other():
    graph = import_graph()
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
    """Whatever tool builds a Runner from the config gets crash-safe checkpoints, the checks (those of the dataset
    configs in our loops, before the datasets are built), exact resume, preemption and the watchdog."""
    cfg = read_config(path)
    ours = {'train_cfg': (loops.CheckedEpochBasedTrainLoop, loops.CheckedIterBasedTrainLoop),
            'val_cfg': (loops.CheckedValLoop,), 'test_cfg': (loops.CheckedTestLoop,)}
    assert {key: cfg[key].type for key, types in ours.items()
            if cfg[key].type not in {f'convnext_dense.{loop.__name__}' for loop in types}} == {}
    assert cfg.default_hooks.checkpoint.type == f'convnext_dense.{RELIABILITY_HOOKS[0].__name__}'
    declared = {hook.type for hook in cfg.custom_hooks}
    assert {f'convnext_dense.{hook.__name__}' for hook in RELIABILITY_HOOKS[1:]} <= declared
    assert 'convnext_dense' in cfg.custom_imports.imports
    assert 'ARCH_SETTINGS' not in path.read_text()  # configs read output_shape, which follows out_indices too
