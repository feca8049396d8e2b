"""The package's layout holds: each folder imports only the folders below it, no import cycle, no module over 300
lines of code, registration at the top, and the public names (old import paths included) where users find them."""
import ast
from pathlib import Path
from typing import Dict, Set

import pytest

import convnext_dense

PACKAGE = Path(convnext_dense.__file__).parent
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
MAX_LINES = 300  # lines of code (blank lines not counted)


def modules() -> Dict[str, Path]:
    """{dotted name: file} of every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob('*.py')):
        parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
        found['.'.join(parts[:-1] if parts[-1] == '__init__' else parts)] = path
    return found


def imports(name: str, path: Path) -> Set[str]:
    """The package modules ``name`` imports (at any depth of its code, lazy imports included)."""
    package = name if path.name == '__init__.py' else name.rpartition('.')[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            targets = [f'{base}.{alias.name}' for alias in node.names] + [base]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t.split('.')[0] == 'convnext_dense')
    known = modules()
    return {t if t in known else t.rpartition('.')[0] for t in found} & set(known) - {name}


def folder(name: str) -> str:
    parts = name.split('.')
    return parts[1] if len(parts) > 1 else '__init__'


GRAPH = {name: imports(name, path) for name, path in modules().items()}


@pytest.mark.parametrize('name', sorted(GRAPH))
def test_each_module_imports_only_its_folder_and_the_folders_below(name):
    level = LEVELS[folder(name)]
    upward = [target for target in GRAPH[name]
              if folder(target) != folder(name) and LEVELS[folder(target)] >= level]
    assert not upward, f'{name} (level {level}) imports {upward} from its level or above'


def test_no_import_cycle():
    done: Set[str] = set()

    def visit(name: str, stack: tuple) -> None:
        if name in stack:
            raise AssertionError(' -> '.join(stack[stack.index(name):] + (name,)))
        if name in done:
            return
        for target in sorted(GRAPH[name]):
            if target != name.rpartition('.')[0]:  # a package's __init__ is run by importing its modules
                visit(target, stack + (name,))
        done.add(name)

    for name in sorted(GRAPH):
        visit(name, ())


def test_registration_is_imported_by_nothing_inside_the_package():
    assert [name for name, targets in GRAPH.items() if 'convnext_dense.registry' in targets] == ['convnext_dense']


@pytest.mark.parametrize('name', sorted(GRAPH))
def test_no_module_over_300_lines_of_code(name):
    lines = [line for line in modules()[name].read_text(encoding='utf-8').splitlines() if line.strip()]
    assert len(lines) <= MAX_LINES, f'{name}: {len(lines)} lines of code'


def test_the_folder_table_names_every_folder():
    assert {folder(name) for name in GRAPH} == set(LEVELS)


def test_public_names_and_old_import_paths():
    from convnext_dense.class_checks import fit_classes  # the own-data templates import it from there
    from convnext_dense.datasets.class_checks import fit_classes as moved
    from convnext_dense.models import ConvNeXt, ConvNeXtRoadmap
    assert fit_classes is moved
    assert convnext_dense.ConvNeXt is ConvNeXt and convnext_dense.ConvNeXtRoadmap is ConvNeXtRoadmap
    assert callable(convnext_dense.load_backbone_checkpoint)
    for name in ('ConvNeXtLayerDecayOptimizerConstructor', 'install_safe_checkpoint_loader',
                 'uninstall_safe_checkpoint_loader', 'output_shape', 'roadmap_output_shape', 'ARCH_SETTINGS'):
        assert name in convnext_dense.__all__ and hasattr(convnext_dense, name), name

