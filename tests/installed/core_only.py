"""The two Python steps of ``tests/installed/core_only.sh``.

``python core_only.py expose WHEEL DIR`` (run by the project's Python): the requirements the wheel states
(``Requires-Dist`` without extras, e.g. torch, numpy, safetensors, filelock, tqdm), and theirs, recursively, as
installed for this Python, linked into DIR: a folder that a fresh environment puts on its path, so it sees these
distributions and nothing else of the project's stack. A requirement of an OpenMMLab package is an error.

``python core_only.py check`` (run by the fresh environment, outside the checkout): the installed package without
OpenMMLab: imported from site-packages with no OpenMMLab module, mmengine not importable; a backbone built, an
official file and a whole mmdet model file loaded (directly and by ``init_cfg``, once) to the source's feature maps;
a roadmap backbone; layer-decay groups and an AdamW step. Prints ``core-only check ok`` last.
"""
import re
import sys
from pathlib import Path

OPENMMLAB = re.compile(r'^(mmengine|mmcv|mmdet|mmseg|mmsegmentation|mmpretrain)([.]|$)')  # not the stdlib's mmap


def expose(wheel: Path, folder: Path) -> None:
    import zipfile
    from importlib import metadata

    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith('.dist-info/METADATA'))
        requires = [line.split(':', 1)[1].strip() for line in archive.read(meta).decode().splitlines()
                    if line.startswith('Requires-Dist:')]
    todo = [r for r in map(Requirement, requires) if not r.marker or r.marker.evaluate({'extra': ''})]
    bad = [str(r) for r in todo if OPENMMLAB.match(r.name)]
    if bad:
        raise SystemExit(f'{wheel.name} requires OpenMMLab packages without an extra: {bad}')
    seen, linked = set(), []
    while todo:
        requirement = todo.pop()
        key = requirement.name.lower().replace('_', '-')
        if key in seen:
            continue
        seen.add(key)
        dist = metadata.distribution(requirement.name)  # PackageNotFoundError: not installed here
        todo += [r for r in map(Requirement, dist.requires or [])
                 if not r.marker or r.marker.evaluate({'extra': ''})]
        for top in sorted({f.parts[0] for f in dist.files or [] if f.parts[0] not in ('..', '__pycache__')}):
            source = Path(dist.locate_file(top))
            if source.exists() and not (folder / top).exists():
                (folder / top).symlink_to(source)
                linked.append(top)
    print(f'exposed {len(seen)} distributions ({", ".join(sorted(seen))}): {len(linked)} entries')


def check() -> None:
    import logging
    import sysconfig

    import torch
    from torch import nn

    import convnext_dense
    from convnext_dense import ConvNeXt, ConvNeXtRoadmap, layer_decay_param_groups, load_backbone_checkpoint

    assert convnext_dense.__file__.startswith(sysconfig.get_paths()['purelib']), convnext_dense.__file__
    imported = [m for m in sys.modules if OPENMMLAB.match(m)]
    assert not imported, f'import convnext_dense imported {imported}'
    try:
        import mmengine  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError('mmengine is importable in the core-only environment')

    arch = dict(depths=(1, 1, 2, 1), channels=(8, 16, 24, 32))
    torch.manual_seed(0)
    source = ConvNeXt(arch).eval()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = source(x)
    weights = {k: v for k, v in source.state_dict().items() if not k.startswith('norm')}
    torch.save({'model': weights, 'optimizer': {}, 'epoch': 300}, 'official.pth')  # the official classification file
    torch.save({'meta': {'mmdet_version': '3.3.0'}, 'state_dict': {
        **{f'backbone.{k}': v for k, v in source.state_dict().items()},
        'neck.lateral_convs.0.conv.weight': torch.zeros(8, 8, 1, 1)}}, 'mask_rcnn.pth')

    def same(model: nn.Module, norms_from_file: bool) -> None:
        with torch.no_grad():
            got = model.eval()(x)
        for i, (a, b) in enumerate(zip(got, want)):
            if norms_from_file:
                torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
            else:  # the output norms keep their init: equal up to the norm's affine
                norm = getattr(source, f'norm{i}')
                torch.testing.assert_close(a * norm.weight[:, None, None] + norm.bias[:, None, None], b,
                                           rtol=0, atol=1e-5)

    direct = ConvNeXt(arch)
    assert load_backbone_checkpoint(direct, 'official.pth').layout == 'official'
    same(direct, norms_from_file=False)
    via_init_cfg = ConvNeXt(arch, init_cfg=dict(type='Pretrained', checkpoint='mask_rcnn.pth'))
    via_init_cfg.init_weights()
    same(via_init_cfg, norms_from_file=True)
    with torch.no_grad():
        via_init_cfg.norm3.weight.zero_()
    warnings = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = warnings.append
    logging.getLogger('convnext_dense').addHandler(handler)
    via_init_cfg.init_weights()  # once only: the zeroed weight stays, a warning says so
    assert via_init_cfg.norm3.weight.abs().sum() == 0
    assert [r.getMessage() for r in warnings] == [
        'init_weights of ConvNeXt has been called more than once; the weights are kept']

    roadmap = ConvNeXtRoadmap('resnet', dict(depths=(1, 1, 2, 1), stage_ratio=(1, 1, 1, 1), ratio_width=4, wide=8))
    roadmap.init_weights()
    assert [tuple(o.shape[1:]) for o in roadmap.eval()(x)] == [
        (c, 64 // s, 64 // s) for c, s in zip(roadmap.out_channels, roadmap.out_strides)]

    model = nn.ModuleDict(dict(backbone=direct, head=nn.Conv2d(32, 2, 1)))
    optimizer = torch.optim.AdamW(layer_decay_param_groups(model, lr=1e-3, weight_decay=0.05, decay_rate=0.7))
    outs = model['backbone'].train()(x)
    (model['head'](outs[-1]).square().mean() + sum(o.mean() for o in outs[:-1])).backward()
    before = direct.downsample_layers[0][0].weight.detach().clone()
    optimizer.step()
    assert not torch.equal(before, direct.downsample_layers[0][0].weight)
    print(f'core-only check ok: convnext_dense {convnext_dense.__version__}, torch {torch.__version__}, '
          f'{len(optimizer.param_groups)} layer-decay groups')


if __name__ == '__main__':
    if sys.argv[1:2] == ['expose']:
        expose(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        check()
