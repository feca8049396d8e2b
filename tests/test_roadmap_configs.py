"""The roadmap configs: every step builds in both (the neck's / heads' inputs following the step), and shrunk
copies train one iteration at a few steps through mmdet's and mmseg's own tools/train.py."""
import os
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from mmengine.registry import DefaultScope
from test_stock_tools import stock_tool

from conftest import REPO, finish, read_config, tool
from convnext_dense import ROADMAP_STEPS, roadmap_output_shape
from convnext_dense.checkpoint import read_checkpoint
from convnext_dense.models.follow import FollowBackbone

CONFIGS = {'mmdet': REPO / 'configs' / 'roadmap' / 'mask_rcnn_roadmap_1x.py',
           'mmseg': REPO / 'configs' / 'roadmap' / 'upernet_roadmap_512_160k.py'}
TINY = {'mmdet': REPO / 'tests' / 'configs' / 'tiny_roadmap_det.py',
        'mmseg': REPO / 'tests' / 'configs' / 'tiny_roadmap_seg.py'}
# both layouts (mmdet's ResNet names, ConvNeXt's), BN with frozen statistics and LN in-block downsampling, both tools
RUNS = [('mmdet', 'resnet'), ('mmdet', 'layer_norm'), ('mmseg', 'separate_downsampling')]
pytestmark = pytest.mark.usefixtures('default_paths')


def build_on_meta(toolkit: str, **options) -> torch.nn.Module:
    cfg = read_config(CONFIGS[toolkit])
    cfg.merge_from_dict(options)
    from mmengine.registry import MODELS
    __import__(f'{toolkit}.registry')
    with DefaultScope.overwrite_default_scope(toolkit), torch.device('meta'):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('toolkit', CONFIGS)
def test_every_step_builds_and_the_inputs_follow_it(toolkit):
    for step in ROADMAP_STEPS:
        model = build_on_meta(toolkit, **{'model.backbone.step': step})
        channels = roadmap_output_shape(step).channels
        assert model.backbone.step == step and model.backbone.out_channels == channels
        assert model.backbone.norm_eval == (toolkit == 'mmdet')  # each toolkit's way with BN (the docstrings say why)
        if toolkit == 'mmdet':
            assert type(model).__name__ == 'MaskRCNN'
            assert [lateral.conv.in_channels for lateral in model.neck.lateral_convs] == list(channels)
        else:
            assert type(model).__name__ == 'EncoderDecoder'
            assert [conv.conv.in_channels for conv in model.decode_head.lateral_convs] == list(channels[:-1])
            assert model.auxiliary_head.convs[0].conv.in_channels == channels[2]
    assert build_on_meta(toolkit, **{'model.backbone.regime': 'resnet200'}).backbone.out_channels[-1] == 1024


def test_follow_backbone_refuses_other_channels_and_backbones_without_a_contract():
    backbone = dict(type='convnext_dense.ConvNeXtRoadmap', step='resnet')
    with DefaultScope.overwrite_default_scope('mmdet'):
        with pytest.raises(ValueError, match=r'model.neck.in_channels=\[96, 192, 384, 768\] but the backbone .*'
                                             r"'step': 'resnet'.* returns \[256, 512, 1024, 2048\]"):
            FollowBackbone('MaskRCNN', backbone, neck=dict(type='FPN', in_channels=[96, 192, 384, 768],
                                                           out_channels=8, num_outs=5))
        with pytest.raises(TypeError, match='ResNet has none'):
            FollowBackbone('MaskRCNN', dict(type='ResNet', depth=18), neck=dict(type='FPN', out_channels=8,
                                                                               num_outs=5))


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Each run of ``RUNS``: one iteration of the shrunk config through the toolkit's tools/train.py, 2 at a time."""
    from convnext_dense.synthetic.ade import write_ade_demo
    from convnext_dense.synthetic.coco import write_coco_demo
    base = tmp_path_factory.mktemp('roadmap_runs')
    write_coco_demo(str(base / 'coco'), num_train=4, num_val=2, seed=0, size=64)
    write_ade_demo(str(base / 'ade'), num_train=2, num_val=1, seed=0, size=64)
    env = dict(os.environ, COCO_DEMO_ROOT=f'{base / "coco"}/', ADE_DEMO_ROOT=str(base / 'ade'))

    def run(toolkit: str, step: str):
        work_dir = base / f'{toolkit}_{step}'
        out = finish(tool(str(stock_tool(toolkit, 'train.py')), str(TINY[toolkit]), '--work-dir', str(work_dir),
                          '--cfg-options', f'model.backbone.step={step}', env=env))
        return out, read_checkpoint(work_dir / 'iter_1.pth' if toolkit == 'mmseg' else work_dir / 'epoch_1.pth')
    with ThreadPoolExecutor(2) as pool:
        futures = {key: pool.submit(run, *key) for key in RUNS}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize('toolkit, step', RUNS)
def test_a_step_trains_one_iteration_through_the_stock_tool(trained, toolkit, step):
    out, checkpoint = trained[(toolkit, step)]
    assert re.search(r'\(train\) +(\[1\])?\[1/1\].* loss: \d+\.\d+', out), out[-3000:]
    assert re.search(r'ConvNeXt (layer|stage)_wise lr decay: rate 0\.9\d?, num_layers 4', out)  # the roadmap's ids
    state = checkpoint['state_dict']
    small = read_config(TINY[toolkit]).model.backbone.regime
    channels = roadmap_output_shape(step, small).channels
    if toolkit == 'mmdet':
        assert [state[f'neck.lateral_convs.{i}.conv.weight'].shape[1] for i in range(4)] == list(channels)
    else:
        assert state['auxiliary_head.convs.0.conv.weight'].shape[1] == channels[2]
    ends = {'resnet': 'backbone.layer1.0.conv1.weight', 'separate_downsampling': 'backbone.stages.0.0.dwconv.weight',
            'layer_norm': 'backbone.layer1.0.ln1.weight'}
    assert ends[step] in state
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
