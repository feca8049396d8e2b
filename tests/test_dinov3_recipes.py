"""DINOv3's dense recipes: the ADE20K linear probe field by field as dinov3's own config, its linear head, the
fine-tuning configs as the in22k recipes with DINOv3's weights, and a shrunk probe trained and evaluated through
mmseg's own ``tools/train.py`` from a DINOv3-layout file.
"""
import os
from unittest import mock

import pytest
import torch
from learning import assert_moved_by_the_steps, train_records
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS
from test_checkpoint_2025 import dinov3_file
from test_stock_tools import stock_tool

from conftest import REPO, finish, read_config, tool
from convnext_dense import output_shape
from convnext_dense.checkpoint import read_checkpoint
from convnext_dense.checkpoint.layouts import DINOV3_CHECKPOINTS
from convnext_dense.checkpoint.loading import read_convnext_checkpoint
from convnext_dense.synthetic.ade import write_ade_demo

ADE = REPO / 'configs' / 'ade20k'
COCO = REPO / 'configs' / 'coco'
# DINOv3's model card, typed here again on purpose: size -> (arch, published mIoU)
LINEAR = {'t': ('tiny', 42.7), 's': ('small', 44.8), 'b': ('base', 46.3), 'l': ('large', 47.8)}
pytestmark = pytest.mark.usefixtures('default_paths')


@pytest.fixture(autouse=True)
def mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def build_structure(model_cfg) -> torch.nn.Module:
    """The model with its weights left uninitialised: structure only (random values for L take seconds)."""
    model_cfg.backbone.init_cfg = None
    with mock.patch.multiple(torch.nn.init, **{f: lambda t, *a, **k: t for f in
                                               ('uniform_', 'normal_', 'trunc_normal_', 'kaiming_uniform_')}):
        return revert_sync_batchnorm(MODELS.build(model_cfg))


@pytest.mark.parametrize('size', list(LINEAR))
def test_linear_probe_is_dinov3_s_recipe(size):
    arch, miou = LINEAR[size]
    path = ADE / f'linear_dinov3_convnext_{size}_512.py'
    assert f'published mIoU\n{miou}' in path.read_text()
    cfg = read_config(path)
    backbone, head = cfg.model.backbone, cfg.model.decode_head
    assert (backbone.arch, backbone.out_indices, backbone.frozen_stages) == (arch, (3,), 3)
    file = backbone.init_cfg.checkpoint
    assert backbone.init_cfg.type == 'Pretrained' and DINOV3_CHECKPOINTS[file.split('/')[-1]] == \
        f'hf://timm/convnext_{arch}.dinov3_lvd1689m'
    with pytest.raises(FileNotFoundError, match=f'gated: request it from Meta .*CONVNEXT_PRETRAINED=hf://timm/'
                                                f'convnext_{arch}.dinov3_lvd1689m'):
        read_convnext_checkpoint(file)
    assert (head.type, head.dropout_ratio, head.norm_cfg.type, head.num_classes) == \
        ('convnext_dense.DINOv3LinearHead', 0.1, 'SyncBN', 150)
    assert head.loss_decode == dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
    assert cfg.model.test_cfg == dict(mode='slide', crop_size=(512, 512), stride=(341, 341))
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-3)
    assert cfg.optim_wrapper.type == 'OptimWrapper' and 'clip_grad' not in cfg.optim_wrapper  # fp32, no clipping
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end) == ('LinearLR', 1e-6, 1500)
    assert (cosine.type, cosine.begin, cosine.end, cosine.T_max, cosine.eta_min) == \
        ('CosineAnnealingLR', 1500, 40000, 38500, 0.0)
    assert (cfg.train_cfg.max_iters, cfg.train_cfg.val_interval, cfg.train_dataloader.batch_size) == (40000, 5000, 2)
    steps = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert (steps['RandomResize'].scale, steps['RandomResize'].ratio_range) == ((2048, 512), (0.5, 2.0))
    assert (steps['RandomCrop'].crop_size, steps['RandomCrop'].cat_max_ratio) == ((512, 512), 0.75)
    assert steps['RandomFlip'].prob == 0.5 and steps['PhotoMetricDistortion'].hue_delta == 90
    assert steps['LoadAnnotations'].reduce_zero_label

    model = build_structure(cfg.model)
    (last,) = output_shape(arch, 3).channels
    assert model.backbone.out_channels == (last,)
    assert model.decode_head.conv_seg.in_channels == model.decode_head.bn.num_features == last
    assert not any(p.requires_grad for p in model.backbone.parameters())  # frozen, its norm3 included
    assert all(p.requires_grad for p in model.decode_head.parameters())


def test_linear_head_is_dropout_then_batchnorm_then_a_normal_init_conv():
    head = MODELS.build(dict(type='convnext_dense.DINOv3LinearHead', in_channels=32, channels=32, num_classes=5,
                             norm_cfg=dict(type='BN'), init_cfg=dict(type='Normal', std=0.01, override=dict(
                                 name='conv_seg'))))
    head.init_weights()
    assert abs(float(head.conv_seg.weight.std()) - 0.01) < 0.003 and not head.conv_seg.bias.any()
    x = torch.randn(2, 32, 4, 6)
    head.eval()
    with torch.no_grad():
        bn = head.bn(x)
        torch.testing.assert_close(head([x]), head.conv_seg(bn))
    head.train()
    calls = []
    for name in ('dropout', 'bn', 'conv_seg'):
        getattr(head, name).register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    assert head([x]).shape == (2, 5, 4, 6) and calls == ['dropout', 'bn', 'conv_seg']
    with pytest.raises(ValueError, match='channels=16 must equal the channels of its input, 32'):
        MODELS.build(dict(type='convnext_dense.DINOv3LinearHead', in_channels=32, channels=16, num_classes=5))


@pytest.mark.parametrize('config', ['ade20k/upernet_dinov3_convnext_b_640', 'ade20k/upernet_dinov3_convnext_l_640',
                                    'coco/cascade_dinov3_convnext_b', 'coco/cascade_dinov3_convnext_l'])
def test_fine_tuning_configs_are_the_in22k_recipes_with_dinov3_weights(config):
    cfg = read_config(REPO / 'configs' / f'{config}.py')
    size = config[-1] if config.startswith('coco') else config.split('_')[-2]
    arch = {'b': 'base', 'l': 'large'}[size]
    recipe = config.replace('dinov3_', '').replace('_640', '_640_in22k') + ('' if 'ade20k' in config else '_in22k')
    base = read_config(REPO / 'configs' / f'{recipe}.py')
    file = cfg.model.backbone.init_cfg.checkpoint
    assert DINOV3_CHECKPOINTS[file.split('/')[-1]] == f'hf://timm/convnext_{arch}.dinov3_lvd1689m'
    base.model.backbone.init_cfg.checkpoint = file
    assert cfg.to_dict() == base.to_dict()  # the weights are the one deviation
    assert 'not published, not measured' in (REPO / 'configs' / f'{config}.py').read_text()


@pytest.fixture(scope='module')
def probe_run(tmp_path_factory):
    """The shrunk probe trained and evaluated once by mmseg's own tools/train.py, from a DINOv3-layout file."""
    root = tmp_path_factory.mktemp('linear')
    write_ade_demo(str(root / 'ade'), num_train=4, num_val=2, seed=0, size=64)
    weights = dinov3_file(seed=11)
    torch.save(weights, root / 'dinov3_convnext_tiny.pth')
    env = dict(os.environ, ADE_DEMO_ROOT=str(root / 'ade'), CONVNEXT_PRETRAINED=str(root / 'dinov3_convnext_tiny.pth'))
    out = finish(tool(str(stock_tool('mmseg', 'train.py')), str(REPO / 'tests' / 'configs' / 'tiny_linear_dinov3.py'),
                      '--work-dir', str(root / 'work'), env=env))
    return out, weights, root / 'work'


def test_shrunk_probe_trains_and_evaluates_through_mmseg_train(probe_run):
    out, weights, work = probe_run
    assert 'dinov3 layout' in out and 'output norms from the file: norm3' in out
    assert 'Iter(train) [8/8]' in out and 'mIoU' in out.split('Iter(val)')[-1]
    state = read_checkpoint(work / 'iter_8.pth')['state_dict']
    for key, tensor in weights.items():  # frozen: every backbone tensor is still the file's
        ours = key.replace('norms.3.', 'norm3.').replace('norm.', 'norm3.') if key.startswith('norm') else key
        assert torch.equal(state[f'backbone.{ours}'], tensor), key
    assert state['decode_head.bn.running_mean'].abs().sum() > 0  # the head ran (a forward pass moves it, lr 0 too)
    # the head learned: its BN affine and classifier bias (init 1 / 0) moved by the run's Adam steps
    records = train_records(work)
    assert [r['iter'] for r in records] == list(range(1, 9))
    assert_moved_by_the_steps(state, ['decode_head.bn.weight', 'decode_head.bn.bias', 'decode_head.conv_seg.bias'],
                              sum(r['lr'] for r in records))
    assert state['decode_head.conv_seg.weight'].shape[1] == weights['norm.weight'].shape[0]
