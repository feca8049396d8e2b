"""The backbone swap into stock configs (docs/stock_configs.md): each documented block, applied as written to mmdet's
stock RetinaNet and DINO and mmseg's stock DeepLabV3+, builds with every channel field read from the backbone and
trains two iterations on generated data; a value that disagrees without ``overwrite`` is one line naming the key.

One child process per toolkit (both side by side) loads each block with the train tool's ``load_config`` and
``build_runner``; the test shrinks only what makes a CPU run slow (arch, image size, head widths, the loop).
"""
import json
import os
import re
import textwrap
from pathlib import Path
from typing import Dict

import pytest

from conftest import REPO, TINY, finish, tool

DOC = REPO / 'docs' / 'stock_configs.md'
BLOCK = re.compile(r"```python\n(_base_ = '(mmdet|mmseg)::[^']+'\n.*?)```", re.S)
SHAPES_DET = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
              dict(type='Resize', scale_factor=1.0), dict(type='PackDetInputs')]
SHAPES_SEG = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', reduce_zero_label=True),
              dict(type='PackSegInputs')]

# The child: trains each config of argv[2:] two iterations, prints one JSON line per config.
CHILD = textwrap.dedent('''
    import json, math, sys, time
    from convnext_dense.tools.cli import build_runner, load_config
    spec = json.loads(sys.argv[1])
    for path in sys.argv[2:]:
        start = time.monotonic()
        cfg = load_config(path, spec['options'], work_dir=path + '.work')
        cfg.merge_from_dict(spec['per_model'].get(cfg.model.model_type, {}))
        cfg.model.backbone.arch = spec['arch']
        cfg.model.backbone.init_cfg = None
        cfg.train_dataloader = dict(cfg.train_dataloader, batch_size=2, num_workers=0, persistent_workers=False,
                                    sampler=dict(type='InfiniteSampler', shuffle=False),
                                    dataset=dict(cfg.train_dataloader.dataset, **spec['dataset']))
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=10 ** 6)
        for key in ('val_dataloader', 'val_cfg', 'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator',
                    'param_scheduler', 'custom_hooks'):
            cfg[key] = None
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10 ** 6)
        cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
        runner = build_runner(cfg)
        runner.train()
        model, loss = runner.model, runner.message_hub.get_scalar('train/loss').current()
        reads = {name: getattr(model, name).in_channels for name in ('decode_head', 'auxiliary_head')
                 if getattr(model, name, None) is not None}
        if getattr(model, 'neck', None) is not None:  # FPN keeps in_channels; ChannelMapper only its convs
            neck = model.neck
            reads['neck'] = list(neck.in_channels if hasattr(neck, 'in_channels') else
                                 [conv.conv.in_channels for conv in neck.convs])
        if hasattr(model, 'decode_head') and hasattr(model.decode_head, 'c1_bottleneck'):
            reads['c1'] = model.decode_head.c1_bottleneck.conv.in_channels
        print(json.dumps(dict(path=path, type=type(model).__name__, iter=runner.iter, loss=float(loss),
                              finite=math.isfinite(float(loss)), out_channels=list(model.backbone.out_channels),
                              reads=reads, seconds=time.monotonic() - start)), flush=True)
''')


def blocks() -> Dict[str, str]:
    """The documented blocks by their base config, e.g. 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'."""
    found = {re.match(r"_base_ = '([^']+)'", code).group(1): code for code, _ in BLOCK.findall(DOC.read_text())}
    assert len(found) == 3, found
    return found


@pytest.fixture(scope='module')
def swapped(tmp_path_factory) -> Dict[str, dict]:
    from convnext_dense.synthetic.ade import write_ade_demo
    from convnext_dense.synthetic.coco import SHAPES, write_coco_demo
    root = tmp_path_factory.mktemp('stock_swap')
    write_coco_demo(str(root / 'coco'), num_train=2, num_val=1, seed=0, size=64)
    write_ade_demo(str(root / 'ade'), num_train=2, num_val=1, seed=0, size=64)
    specs = {
        'mmdet': dict(
            arch=dict(TINY), options={},
            dataset=dict(data_root=f'{root / "coco"}/', metainfo=dict(classes=list(SHAPES)), pipeline=SHAPES_DET),
            per_model={'DINO': {'model.num_queries': 30,  # 900 > the 85 tokens of a 64 px image
                                'model.encoder.num_layers': 1, 'model.decoder.num_layers': 1},
                       'RetinaNet': {'model.bbox_head.stacked_convs': 1, 'model.bbox_head.feat_channels': 16}}),
        'mmseg': dict(
            arch=dict(TINY), per_model={}, dataset=dict(data_root=str(root / 'ade'), pipeline=SHAPES_SEG),
            options={'model.data_preprocessor.size': (64, 64), 'model.decode_head.channels': 16,
                     'model.decode_head.c1_channels': 8, 'model.auxiliary_head.channels': 16}),
    }
    paths: Dict[str, list] = {'mmdet': [], 'mmseg': []}
    for base, code in blocks().items():
        path = root / (re.sub(r'\W+', '_', base) + '.py')
        path.write_text(code)
        paths[base.split('::')[0]].append(str(path))
    procs = {kit: tool('-c', CHILD, json.dumps(specs[kit]), *paths[kit], env=dict(os.environ)) for kit in paths}
    results = {}
    for proc in procs.values():
        for line in finish(proc).splitlines():
            if line.startswith('{"path"'):
                record = json.loads(line)
                results[Path(record['path']).stem] = record
    return results


def test_each_documented_swap_trains_two_iterations_with_the_backbones_channels(swapped):
    assert sorted(run['type'] for run in swapped.values()) == ['DINO', 'EncoderDecoder', 'RetinaNet']
    channels = list(TINY['channels'])
    for name, run in swapped.items():
        assert run['iter'] == 2 and run['finite'], run
        if 'retinanet' in name:
            assert run['type'] == 'RetinaNet' and run['reads']['neck'] == channels == run['out_channels']
        elif 'dino' in name:
            assert run['type'] == 'DINO' and run['reads']['neck'] == channels[1:] == run['out_channels']
        else:
            assert run['type'] == 'EncoderDecoder' and run['out_channels'] == channels
            assert run['reads'] == dict(decode_head=channels[3], auxiliary_head=channels[2], c1=channels[0])


def test_a_value_that_disagrees_is_one_line_naming_the_key_and_the_value_it_needs():
    """Without overwrite the stock ResNet channels are refused at build time, before any forward."""
    import mmseg
    from mmengine.config import Config

    from convnext_dense.models.follow import follow_channels
    from convnext_dense.utils.errors import ConfigError
    stock = Path(mmseg.__file__).parent / '.mim' / 'configs' / 'deeplabv3plus'
    base = Config.fromfile(stock / 'deeplabv3plus_r50-d8_4xb4-80k_ade20k-512x512.py').model
    heads = dict(decode_head=base.decode_head, auxiliary_head=[base.auxiliary_head, dict(base.auxiliary_head,
                                                                                          in_index=1)])
    with pytest.raises(ConfigError, match=r'^model\.decode_head\.in_channels=2048 but the backbone returns 32 there: '
                                          r'set model\.decode_head\.in_channels=32, or None to read it from the '
                                          r'backbone$'):
        follow_channels(heads, TINY['channels'])
    assert follow_channels(heads, TINY['channels'], overwrite=True) == [
        'model.decode_head.in_channels=32', 'model.decode_head.c1_in_channels=8',
        'model.auxiliary_head.0.in_channels=24', 'model.auxiliary_head.1.in_channels=16']


def test_a_list_of_necks_is_a_chain_only_its_first_reads_the_backbone():
    """mmdet's Libra R-CNN: ``neck=[FPN, BFP]``; BFP reads FPN's 256 channels, never the backbone's."""
    import mmdet
    from mmengine.config import Config

    from convnext_dense.models.follow import follow_channels
    stock = Path(mmdet.__file__).parent / '.mim' / 'configs' / 'libra_rcnn' / 'libra-faster-rcnn_r50_fpn_1x_coco.py'
    model = dict(neck=Config.fromfile(stock).model.neck)
    assert follow_channels(model, TINY['channels'], overwrite=True) == [
        f"model.neck.0.in_channels={list(TINY['channels'])}"]
    assert model['neck'][1]['in_channels'] == 256
