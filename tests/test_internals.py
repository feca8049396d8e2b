"""docs/openmmlab_internals.md lists every private OpenMMLab name the package uses, and the versions it was read on.

A use is what the source shows: in a module that imports mmengine, mmdet, mmseg, mmcv or mim (and in
``convnext_dense_mim.py``, which patches them), an attribute access, a method definition or an import of an underscore
name that the installed mmengine, mmdet, mmseg or mmcv also define (a private module such as ``mmengine._strategy``
included). The page must name it in one entry (a table row or a section) together with the file. Our own names that
only happen to equal one of theirs are in ``OURS``.
"""
import ast
import functools
import importlib.metadata
import importlib.util
import re
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Set, Tuple

from conftest import REPO

DOC = REPO / 'docs' / 'openmmlab_internals.md'
HOOK = REPO / 'convnext_dense_mim.py'
TOOLKITS = ('mmengine', 'mmdet', 'mmseg', 'mmcv')
IMPORTS_OPENMMLAB = re.compile(r'^\s*(?:from|import)\s+(?:mmengine|mmdet|mmseg|mmcv|mim)\b', re.M)
PRIVATE = re.compile(r'_[a-z]\w*')  # one leading underscore: not a dunder
# Our own attributes whose names mmengine, mmdet, mmseg or mmcv also use somewhere: {name: whose it is}
OURS = {
    '_labels': 'DatasetCheckHook: the class counts it checks the labels against',
    '_start': 'the part timer of convnext_dense/tools/bench_models.py',
    '_is_init': "models/base.py's InitWeightsModule, which implements mmengine's public is_init protocol itself",
}
# the stack the set-up installs; torch is left out: the set-up keeps a torch the user already has
DISTRIBUTIONS = {'mmengine': 'mmengine', 'mmcv': 'mmcv', 'mmdet': 'mmdet', 'mmseg': 'mmsegmentation'}


@functools.lru_cache(maxsize=None)
def their_names() -> Set[str]:
    """The underscore names the installed toolkits define (functions, assignments, attributes, modules)."""
    defined = re.compile(r'\bdef (_[a-z]\w*)|\b(_[a-z]\w*)\s*(?::[^=\n]*)?=(?!=)')
    names: Set[str] = set()
    for toolkit in TOOLKITS:
        spec = importlib.util.find_spec(toolkit)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            for path in Path(folder).rglob('*.py'):
                names.update(a or b for a, b in defined.findall(path.read_text(errors='ignore')))
                names.update(part.removesuffix('.py') for part in path.relative_to(folder).parts
                             if PRIVATE.fullmatch(part.removesuffix('.py')))
    return names


def used_names(source: str) -> Iterator[str]:
    """Underscore names a module's source reads or sets as attributes, defines as methods, or imports from a
    toolkit (module names included)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.ClassDef):
            names = [f.name for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        elif isinstance(node, ast.ImportFrom) and (node.module or '').split('.')[0] in (*TOOLKITS, 'mim'):
            names = node.module.split('.')[1:] + [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [part for alias in node.names if alias.name.split('.')[0] in (*TOOLKITS, 'mim')
                     for part in alias.name.split('.')[1:]]
        else:
            continue
        yield from (name for name in names if PRIVATE.fullmatch(name))


def doc_entries(text: str) -> List[str]:
    """The page's entries: each table row, and each section's text (from one heading to the next)."""
    text = text.replace('\\_', '_')  # headings escape underscores
    rows = [line for line in text.splitlines() if line.startswith('|')]
    sections = re.split(r'^#+ ', '\n'.join(line for line in text.splitlines() if not line.startswith('|')), flags=re.M)
    return rows + sections


def names_in(entry: str, name: str) -> bool:
    return re.search(rf'(?<![\w]){re.escape(name)}(?!\w)', entry) is not None


def unlisted(modules: Iterable[Tuple[str, str]], entries: List[str]) -> List[str]:
    """'file: name' for each private toolkit name a module (relative path, source) uses that no entry lists with
    the file."""
    missing = []
    for relative, source in modules:
        for name in sorted(set(used_names(source)) & their_names() - set(OURS)):
            if not any(f'`{relative}`' in entry and names_in(entry, name) for entry in entries):
                missing.append(f'{relative}: {name}')
    return missing


def package_modules() -> Iterator[Tuple[str, str]]:
    paths = sorted((REPO / 'convnext_dense').rglob('*.py')) + sorted((REPO / 'tools').glob('*.py'))
    for path in [HOOK, *paths]:
        source = path.read_text()
        if path == HOOK or IMPORTS_OPENMMLAB.search(source):
            yield str(path.relative_to(REPO)), source


def test_every_private_openmmlab_name_the_package_uses_is_listed():
    missing = unlisted(package_modules(), doc_entries(DOC.read_text()))
    assert not missing, ('private OpenMMLab names used but not listed in docs/openmmlab_internals.md (with where, '
                         'what, why, how it fails, the supported route; or, when the name is our own, in OURS):\n'
                         + '\n'.join(missing))


def test_a_new_private_use_is_caught():
    source = 'from mmengine.runner import Runner\n\ndef f(runner):\n    return runner._train_loop, runner._hooks\n'
    entries = doc_entries(DOC.read_text())
    assert unlisted([('convnext_dense/engine/new.py', source)], entries) == [
        'convnext_dense/engine/new.py: _hooks', 'convnext_dense/engine/new.py: _train_loop']
    assert unlisted([('convnext_dense/engine/new.py', 'def f(model):\n    return model._our_own\n')], entries) == []


def start_up_patches() -> Dict[str, str]:
    """{module: what it changes} of the hook's PATCHES, read from its source (importing it would install it)."""
    tree = ast.parse(HOOK.read_text())
    table = next(node.value for node in tree.body if isinstance(node, ast.AnnAssign)
                 and getattr(node.target, 'id', None) == 'PATCHES')
    return {ast.literal_eval(key): ast.literal_eval(value.args[0]) for key, value in zip(table.keys, table.values)}


def test_every_start_up_patch_is_listed():
    patches = start_up_patches()
    assert set(patches) >= {'mmengine.config.utils', 'mmengine.config.config'}
    entries = doc_entries(DOC.read_text())
    missing = [f'{module}: {target}' for module, target in patches.items()
               if not any('`convnext_dense_mim.py`' in entry and names_in(entry, module)
                          and names_in(entry, target.rpartition('.')[2]) for entry in entries)]
    assert not missing, missing


def test_the_list_was_checked_on_the_installed_versions():
    """An upgrade of mmengine, mmcv, mmdet or mmseg re-reads the list: then the page's line is updated."""
    line = next(line for line in DOC.read_text().splitlines() if line.startswith('**Checked on**'))
    stated = dict(re.findall(rf'\b({"|".join(DISTRIBUTIONS)}) (\d+(?:\.\d+)+)', line))
    assert set(stated) == set(DISTRIBUTIONS), line
    for package, version in stated.items():
        try:
            installed = importlib.metadata.version(DISTRIBUTIONS[package])
        except importlib.metadata.PackageNotFoundError:
            continue
        assert re.match(rf'{re.escape(version)}(?![\d])', installed), (
            f'{package} {installed} is installed, docs/openmmlab_internals.md was checked on {version}: re-read each '
            'entry against it and update the line')
