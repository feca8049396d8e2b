"""The model core needs only PyTorch: it imports and works where no OpenMMLab package can be imported, no core module
imports one at module level, the docs page's plain-PyTorch example runs, and where mmengine is installed the
backbones keep its init protocol inside OpenMMLab models.

The files the child process loads are written here, in every layout of ``test_checkpoint.CASES`` (official, timm,
HF transformers, mmpretrain, a whole mmdet model...), from tiny random backbones; the child (``core_only_child.py``)
compares their feature maps with the sources'.
"""
import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.model import BaseModule
from test_checkpoint import CASES, NORMS, V1, expected_features, save, source
from test_design import module_name
from test_roadmap import SMALL
from torch import nn

from conftest import REPO, TINY, randomize
from convnext_dense import ConvNeXt, ConvNeXtRoadmap

CHILD = REPO / 'tests' / 'core_only_child.py'
PACKAGE = REPO / 'convnext_dense'
# The folders of the model core, and the package folders above it that the core must not import either.
CORE = ('models', 'checkpoint', 'specs', 'utils')
NOT_CORE = ('convnext_dense.models.heads', 'convnext_dense.engine', 'convnext_dense.datasets', 'convnext_dense.tools',
            'convnext_dense.registry', 'convnext_dense.testing', 'convnext_dense.synthetic')
OPENMMLAB = re.compile(r'^(mmengine|mmcv|mmdet|mmseg|mmpretrain)([.]|$)')  # not the stdlib's mmap
DOCS = REPO / 'docs' / 'without_openmmlab.md'


def run_child(*args: str, cwd: Path) -> str:
    out = subprocess.run([sys.executable, str(CHILD), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == 'core ok', out.stdout + out.stderr
    return out.stdout


def whole_model_file(model: nn.Module, path: Path) -> str:
    """An mmdet 3.x whole-model checkpoint: the backbone under ``backbone.``, a neck beside it."""
    torch.save({'meta': {'mmdet_version': '3.3.0'}, 'state_dict': {
        **{f'backbone.{k}': v for k, v in model.state_dict().items()},
        'neck.lateral_convs.0.conv.weight': torch.rand(8, 8, 1, 1)}}, path)
    return str(path)


def test_core_works_without_openmmlab(tmp_path):
    x = torch.randn(1, 3, 32, 32)
    layouts = {}
    for case, (kind, name, build, prefix, layout, norms_in_file) in CASES.items():
        model = source(kind, seed=len(case))
        (tmp_path / case).mkdir()
        path = save(build(model), tmp_path / case / name)
        layouts[case] = dict(kind=kind, path=str(path), prefix=prefix, layout=layout, x=x,
                             want=expected_features(model, x, norms_in_file))
    roadmap = {}
    for step in ('resnet', 'separate_downsampling'):  # mmdet's ResNet names; ConvNeXt's
        model, image = randomize(ConvNeXtRoadmap(step, SMALL)).eval(), torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            roadmap[step] = dict(kwargs=dict(step=step, regime=SMALL), x=image, want=model(image),
                                 path=whole_model_file(model, tmp_path / f'{step}.pth'))
    reader = dict(numpy=str(tmp_path / 'numpy.pth'), runner=str(tmp_path / 'runner.pth'))
    torch.save({'state_dict': {}, 'meta': {'array': np.arange(3)}}, reader['numpy'])
    torch.save({'state_dict': {}, 'message_hub': {'log_scalars': {'train/loss': HistoryBuffer([1.0, 2.0], [1, 1])}}},
               reader['runner'])
    torch.save(dict(layouts=layouts, roadmap=roadmap, reader=reader), tmp_path / 'manifest.pt')
    assert 'official_dense_whole_model' in layouts and 'timm_safetensors' in layouts and 'hf_convnext' in layouts
    assert run_child(str(tmp_path / 'manifest.pt'), cwd=tmp_path).startswith('imported ')


def python_blocks(markdown: str, heading: str = '') -> list:
    """The ```python blocks of a markdown page, those under ``heading`` (a '## ' title) only when given."""
    if heading:
        markdown = markdown.split(f'\n## {heading}\n', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'^```python\n(.*?)^```', markdown, re.MULTILINE | re.DOTALL)


def test_docs_plain_pytorch_example_runs_without_openmmlab(tmp_path):
    """The page's first example as a user copies it; the file it names is a ConvNeXt-T in the official layout."""
    blocks = python_blocks(DOCS.read_text(encoding='utf-8'), 'Plain PyTorch')
    assert blocks, f'no python block under "## Plain PyTorch" in {DOCS}'
    torch.save({'model': ConvNeXt('tiny').state_dict()}, tmp_path / 'convnext_tiny_1k_224.pth')
    (tmp_path / 'example.py').write_text(blocks[0] + "\nprint('core ok')\n", encoding='utf-8')
    run_child('--run', str(tmp_path / 'example.py'), cwd=tmp_path)


def test_every_docs_example_is_python():
    for block in python_blocks(DOCS.read_text(encoding='utf-8')):
        ast.parse(block)


def module_level_imports(code: str, package: str) -> list:
    """(line, absolute module name) of each import that runs when a module of ``package`` with source ``code`` is
    imported: everywhere but in function bodies (a class body runs at import)."""
    found = []
    todo = list(ast.parse(code).body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:  # relative: anchored at the package, one level up per dot after the first
                parts = package.split('.')
                base = '.'.join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found += [(node.lineno, base if node.module else f'{base}.{alias.name}') for alias in node.names]
        todo.extend(ast.iter_child_nodes(node))
    return found


def test_no_core_module_imports_openmmlab_at_module_level():
    files = [p for folder in CORE for p in sorted((PACKAGE / folder).rglob('*.py'))
             if (PACKAGE / 'models' / 'heads') not in p.parents]
    assert len(files) > 20 and PACKAGE / 'models' / 'backbone.py' in files
    bad = []
    for path in files:
        name = module_name(path)
        package = name if path.name == '__init__.py' else name.rpartition('.')[0]
        bad += [f'{path.relative_to(REPO)}:{line}: {imported}'
                for line, imported in module_level_imports(path.read_text(encoding='utf-8'), package)
                if OPENMMLAB.match(imported) or imported.startswith(NOT_CORE)]
    assert not bad, 'module-level imports the core must not have:\n' + '\n'.join(bad)


def test_the_import_rule_sees_imports_in_try_and_if_and_resolves_relative_ones():
    code = ('try:\n    from mmengine.model import BaseModule\nexcept ImportError:\n    pass\n'
            'if True:\n    import mmcv.ops\nfrom ...engine import hooks\nfrom .. import layers\n'
            'class A:\n    import mmseg\n'
            'def later():\n    import mmdet\n')
    names = sorted(name for _, name in module_level_imports(code, 'convnext_dense.models.roadmap'))
    assert names == ['convnext_dense.engine', 'convnext_dense.models.layers', 'mmcv.ops', 'mmengine.model', 'mmseg']


class Parent(BaseModule):
    """An OpenMMLab model in miniature: mmengine's BaseModule holding our backbone and a plain head."""

    def __init__(self, backbone_init_cfg: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self.backbone = ConvNeXt(**V1, init_cfg=backbone_init_cfg)
        self.head = nn.Conv2d(TINY['channels'][-1], 2, 1)


def test_inside_an_mmengine_model_the_backbone_loads_once(tmp_path):
    """mmengine's init_weights (with its _params_init_info bookkeeping) calls ours once: a second call of the
    parent's leaves the weights as they are."""
    file = randomize(ConvNeXt(**V1))
    path = tmp_path / 'official.pth'
    torch.save({'model': file.state_dict()}, path)
    model = Parent(dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    assert model.backbone.is_init and not hasattr(model.backbone, '_params_init_info')
    assert all(torch.equal(p, file.state_dict()[n]) for n, p in model.backbone.state_dict().items()
               if n.split('.')[0] not in NORMS)
    with torch.no_grad():
        model.backbone.stages[0][0].dwconv.weight.zero_()
    model.init_weights()
    model.backbone.init_weights()
    assert model.backbone.stages[0][0].dwconv.weight.abs().sum() == 0


@pytest.mark.parametrize('init_cfg', [dict(type='Constant', val=0.5, layer='Conv2d'),
                                      [dict(type='Constant', val=0.5, layer='Conv2d'), dict(type='Pretrained')]])
def test_with_mmengine_its_initializers_run_and_pretrained_wins(init_cfg, tmp_path):
    file = randomize(ConvNeXt(**V1))
    torch.save({'model': file.state_dict()}, tmp_path / 'f.pth')
    if isinstance(init_cfg, list):
        init_cfg[1]['checkpoint'] = str(tmp_path / 'f.pth')
    model = Parent(init_cfg)
    model.init_weights()
    weight = model.backbone.stages[1][0].dwconv.weight
    assert torch.equal(weight, file.stages[1][0].dwconv.weight if isinstance(init_cfg, list)
                       else torch.full_like(weight, 0.5))
