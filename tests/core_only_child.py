"""The model core where no OpenMMLab package can be imported: the child process of ``tests/test_core_only.py``.

``python tests/core_only_child.py MANIFEST`` first makes mmengine, mmcv, mmdet, mmseg and mmpretrain unimportable
(``sys.modules[name] = None``: ``import name`` then raises ImportError, as where it is not installed), then imports
convnext_dense and every core module, loads the files the manifest lists (written by the parent from
``test_checkpoint.CASES``) and checks their feature maps, the init protocol, the reader's refusals and the
layer-decay groups with an AdamW step. ``python tests/core_only_child.py --run FILE`` runs FILE (a docs snippet)
the same way. Prints ``core ok`` last.
"""
import sys

BLOCKED = ('mmengine', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain')
for _name in BLOCKED:
    sys.modules[_name] = None  # type: ignore[assignment]

import importlib  # noqa: E402
import logging  # noqa: E402
import pkgutil  # noqa: E402
import runpy  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

import convnext_dense  # noqa: E402
from convnext_dense import ConvNeXt, ConvNeXtRoadmap, layer_decay_param_groups, load_backbone_checkpoint  # noqa: E402
from convnext_dense.checkpoint import read_checkpoint  # noqa: E402

CORE = ('models', 'checkpoint', 'specs', 'utils')  # what must import without OpenMMLab; models.heads is mmseg's


def imported_openmmlab() -> list:
    return sorted(m for m, module in sys.modules.items() if m.split('.')[0] in BLOCKED and module is not None)


def import_core() -> int:
    """Import every module of the core folders (not ``models.heads``); the number imported."""
    count = 0
    for folder in CORE:
        package = importlib.import_module(f'convnext_dense.{folder}')
        for info in pkgutil.walk_packages(package.__path__, f'{package.__name__}.'):
            if not info.name.startswith('convnext_dense.models.heads'):
                importlib.import_module(info.name)
                count += 1
    return count


def same(a: tuple, b: tuple) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-5)


def check_layouts(cases: dict) -> None:
    for name, case in cases.items():
        model = ConvNeXt(**case['kind']).eval()
        report = load_backbone_checkpoint(model, case['path'], prefix=case['prefix'])
        assert report.layout == case['layout'], (name, report.layout)
        with torch.no_grad():
            same(model(case['x']), case['want'])


def check_roadmap(cases: dict) -> None:
    for name, case in cases.items():
        model = ConvNeXtRoadmap(**case['kwargs'], init_cfg=dict(type='Pretrained', checkpoint=case['path']))
        model.init_weights()
        with torch.no_grad():
            same(model.eval()(case['x']), case['want'])


def check_init_protocol(case: dict) -> None:
    """Pretrained init_cfg loads once: a second init_weights warns and keeps the weights; Kaiming needs mmengine."""
    model = ConvNeXt(**case['kind'], init_cfg=dict(type='Pretrained', checkpoint=case['path'])).eval()
    assert not model.is_init
    model.init_weights()
    assert model.is_init
    with torch.no_grad():
        same(model(case['x']), case['want'])
        model.stages[0][0].dwconv.weight.zero_()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger('convnext_dense').addHandler(handler)
    model.init_weights()
    assert model.stages[0][0].dwconv.weight.abs().sum() == 0, 'the second init_weights loaded the file again'
    assert any('called more than once' in r.getMessage() for r in records), [r.getMessage() for r in records]
    fresh = ConvNeXt(**case['kind'])
    before = fresh.stages[0][0].pwconv1.weight.clone()
    fresh.init_weights()  # init_cfg None: the official truncated-normal init
    assert not torch.equal(fresh.stages[0][0].pwconv1.weight, before) and fresh.stages[0][0].pwconv1.bias.eq(0).all()
    try:
        ConvNeXtRoadmap('resnet', init_cfg=dict(type='Kaiming', layer='Conv2d')).init_weights()
    except ValueError as e:
        assert 'init_cfg type Kaiming' in str(e) and "dict(type='Pretrained'" in str(e) and 'None' in str(e), e
    else:
        raise AssertionError('a Kaiming init_cfg without mmengine raised nothing')


def check_reader(files: dict) -> None:
    """numpy arrays read without mmengine; a runner checkpoint's message hub is refused, saying what reads it."""
    assert read_checkpoint(files['numpy'])['meta']['array'].tolist() == [0, 1, 2]
    try:
        read_checkpoint(files['runner'])
    except ValueError as e:
        assert 'HistoryBuffer' in str(e) and 'where mmengine is installed' in str(e), e
    else:
        raise AssertionError('a runner checkpoint was read without mmengine')


def check_param_groups(case: dict) -> None:
    model = torch.nn.ModuleDict(dict(backbone=ConvNeXt(**case['kind'], frozen_stages=0), head=torch.nn.Conv2d(
        case['kind']['arch']['channels'][-1], 2, 1)))
    groups = layer_decay_param_groups(model, lr=1e-3, weight_decay=0.05, decay_rate=0.7)
    optimizer = torch.optim.AdamW(groups)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sorted(map(id, trainable)) == sorted(id(p) for g in groups for p in g['params'])
    before = [p.detach().clone() for p in model.parameters()]
    outs = model['backbone'](case['x'])
    loss = model['head'](outs[-1]).square().mean() + sum(o.mean() for o in outs[:-1])  # a gradient for every norm
    loss.backward()
    optimizer.step()
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters())]
    assert all(c == p.requires_grad for c, p in zip(changed, model.parameters()))
    assert max(g['lr'] for g in groups) == 1e-3 and min(g['lr'] for g in groups) < 1e-3


def main() -> None:
    if sys.argv[1] == '--run':
        runpy.run_path(sys.argv[2], run_name='__main__')
    else:
        assert not imported_openmmlab(), imported_openmmlab()
        print(f'imported {import_core()} core modules of convnext_dense {convnext_dense.__version__}')
        manifest = torch.load(Path(sys.argv[1]), weights_only=True)
        check_layouts(manifest['layouts'])
        check_roadmap(manifest['roadmap'])
        check_init_protocol(manifest['layouts']['official_v1'])
        check_reader(manifest['reader'])
        check_param_groups(manifest['layouts']['official_v1'])
    assert not imported_openmmlab(), f'OpenMMLab got imported: {imported_openmmlab()}'
    print('core ok')


if __name__ == '__main__':
    main()
