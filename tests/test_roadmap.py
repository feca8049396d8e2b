"""The roadmap backbones: every step of both regimes builds and returns the maps it states, at the paper's FLOPs; the
two ends equal mmdet's ResNet and our ConvNeXt weight for weight; steps accumulate; training-time behaviour; the
layer-decay table of a ResNet-style step; errors.

Every step is built on the meta device (shapes without arithmetic: 32 full-size builds and passes in seconds); the
ends and a few steps run for real at full width on small inputs.
"""
import dataclasses

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from torch import nn

from conftest import randomize
from convnext_dense import ARCH_SETTINGS, ROADMAP_STEPS, ConvNeXt, ConvNeXtRoadmap, roadmap_output_shape
from convnext_dense.specs.roadmap import PAPER, REGIMES, SIDE_BRANCHES, design, paper_gflops, parent
from convnext_dense.tools.roadmap import build_meta, multiply_adds

STEPS = [(regime, step) for regime in REGIMES for step in ROADMAP_STEPS]
# A path of our own, a few KB at every step: ResNet-like (1, 1, 2, 1) blocks of width 4 -> (1, 1, 1, 1) of width 8
SMALL = dict(depths=(1, 1, 2, 1), stage_ratio=(1, 1, 1, 1), ratio_width=4, wide=8)


@pytest.fixture(scope='module')
def meta_models():
    return {key: build_meta(key[1], key[0]) for key in STEPS}


@pytest.mark.parametrize('regime, step', STEPS)
def test_step_returns_the_maps_it_states_at_the_papers_flops(meta_models, regime, step):
    model = meta_models[(regime, step)]
    stated = roadmap_output_shape(step, regime)
    assert model.output_shape() == stated and stated.strides == (4, 8, 16, 32)
    assert (model.out_channels, model.out_strides) == (stated.channels, stated.strides)
    with torch.no_grad():
        outs = model.eval()(torch.empty(1, 3, 224, 224, device='meta'))
    assert [tuple(o.shape) for o in outs] == [(1, c, 224 // s, 224 // s)
                                              for c, s in zip(stated.channels, stated.strides)]
    assert multiply_adds(model) / 1e9 == pytest.approx(paper_gflops(step, regime), rel=0.02)


def test_layer_norm_step_costs_what_fewer_norms_costs_not_table_10s_4_46(meta_models):
    """BN -> LN changes no convolution: Table 10's 4.46 cannot hold, Figure 2's 4.2 is 4.15 rounded."""
    for regime in REGIMES:
        assert multiply_adds(meta_models[(regime, 'layer_norm')]) == multiply_adds(meta_models[(regime, 'fewer_norms')])
    ours = multiply_adds(meta_models[('resnet50', 'layer_norm')]) / 1e9
    assert PAPER['resnet50']['layer_norm'].gflops == 4.46 and abs(ours / 4.46 - 1) > 0.05
    assert round(ours, 1) == 4.1 and round(paper_gflops('layer_norm', 'resnet50'), 1) == 4.2  # 4.145 vs 4.15


def test_steps_accumulate_one_change_each_and_side_branches_leave_the_path():
    assert parent('kernel_7') == 'move_up_depthwise' and parent('gelu') == 'kernel_7'
    assert all(parent(s) == 'move_up_depthwise' for s in SIDE_BRANCHES)
    for regime in REGIMES:
        for step in ROADMAP_STEPS[1:]:
            before, after = dataclasses.asdict(design(parent(step), regime)), dataclasses.asdict(design(step, regime))
            changed = {k for k in after if after[k] != before[k]}
            stage_ratio = {'depths', 'width'} if regime == 'resnet200' else {'depths'}  # R200: width 64 -> 84
            flag = dict(inverted_bottleneck='inverted', move_up_depthwise='moved_up').get(step, step)
            assert changed == (stage_ratio if step == 'stage_ratio' else
                               {'kernel'} if step.startswith('kernel_') else {'width'} if step == 'wider' else
                               {flag}), step
        assert design('separate_downsampling', regime).kernel == 7
    r200 = design('stage_ratio', 'resnet200')
    assert design('resnet', 'resnet200').depths == (3, 24, 36, 3) and (r200.depths, r200.width) == ((3, 3, 27, 3), 84)
    assert design('wider', 'resnet200').width == 128


def mmdet_resnet(regime: str, **kwargs) -> nn.Module:
    """mmdet's ResNet-50, or the same Bottleneck ResNet with ResNet-200's (3, 24, 36, 3) blocks."""
    from mmdet.models.backbones.resnet import Bottleneck, ResNet

    class ResNet200(ResNet):
        arch_settings = {200: (Bottleneck, (3, 24, 36, 3))}
    return ResNet(depth=50, **kwargs) if regime == 'resnet50' else ResNet200(depth=200, **kwargs)


def with_random_weights(model: nn.Module) -> nn.Module:
    """He-normal convolutions and non-trivial BNs (statistics too), in eval mode (mmdet's train() returns None)."""
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data.normal_(0, (2 / (m.out_channels * m.kernel_size[0] * m.kernel_size[1]))**0.5, generator=gen)
        elif isinstance(m, nn.BatchNorm2d):
            for t, low, high in ((m.weight, 0.2, 0.6), (m.bias, -0.1, 0.1), (m.running_mean, -0.1, 0.1),
                                 (m.running_var, 0.5, 1.5)):
                t.data.copy_(torch.rand(t.shape, generator=gen) * (high - low) + low)
    model.eval()
    return model


@pytest.mark.parametrize('regime', REGIMES)
def test_both_ends_have_the_real_models_names_and_shapes(regime):
    def shapes(model):
        return {k: tuple(v.shape) for k, v in model.state_dict().items()}
    with torch.device('meta'):
        assert shapes(ConvNeXtRoadmap('resnet', regime)) == shapes(mmdet_resnet(regime))
        assert shapes(ConvNeXtRoadmap('separate_downsampling', regime)) == shapes(ConvNeXt(REGIMES[regime].convnext))
    assert roadmap_output_shape('separate_downsampling', regime).channels == \
        ARCH_SETTINGS[REGIMES[regime].convnext]['channels']


def test_resnet_end_gives_mmdets_resnet50_outputs():
    theirs = with_random_weights(mmdet_resnet('resnet50'))
    ours = ConvNeXtRoadmap('resnet').eval()
    ours.load_state_dict(theirs.state_dict())  # strict: every name is mmdet's
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        outs = ours(x)
        for a, b in zip(outs, theirs(x)):
            assert a.abs().max() > 0.1  # the comparison sees real activations
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert [o.shape[1] for o in outs] == list(ours.out_channels) == [256, 512, 1024, 2048]


def test_convnext_end_gives_convnext_tiny_outputs():
    theirs = randomize(ConvNeXt('tiny')).eval()
    ours = ConvNeXtRoadmap('separate_downsampling').eval()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(ours(x), theirs(x)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_ends_load_the_real_files_through_init_cfg(tmp_path):
    """A whole mmdet model's ResNet (``backbone.`` prefix) at ``resnet``, an official ConvNeXt file (``model``
    container) at ``separate_downsampling``: two stages of each, so the files stay small."""
    resnet = with_random_weights(mmdet_resnet('resnet50', num_stages=2, strides=(1, 2), dilations=(1, 1),
                                              out_indices=(0, 1)))
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in resnet.state_dict().items()}}, tmp_path / 'r.pth')
    convnext = randomize(ConvNeXt('tiny', out_indices=(0, 1)))
    torch.save({'model': convnext.state_dict()}, tmp_path / 'c.pth')
    x = torch.randn(1, 3, 64, 64)
    for step, theirs, file in (('resnet', resnet, 'r.pth'), ('separate_downsampling', convnext.eval(), 'c.pth')):
        ours = ConvNeXtRoadmap(step, out_indices=(0, 1),
                               init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / file)))
        ours.init_weights()
        with torch.no_grad():
            for a, b in zip(ours.eval()(x), theirs(x)):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('step', ['resnet', 'patchify', 'inverted_bottleneck', 'move_up_depthwise', 'fewer_norms',
                                  'layer_norm', 'separate_downsampling'])  # each kind of stem, block and norm
def test_every_parameter_gets_a_gradient_and_checkpointing_changes_nothing(step):
    plain = randomize(ConvNeXtRoadmap(step, SMALL, drop_path_rate=0.2)).train()
    ckpt = ConvNeXtRoadmap(step, SMALL, drop_path_rate=0.2, with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    results = []
    for model in (plain, ckpt):
        torch.manual_seed(3)
        outs = model(x)
        sum(o.square().mean() for o in outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters()}))
    assert not [n for n, g in results[0][1].items() if g is None or not g.abs().sum() > 0]
    for a, b in zip(results[0][0], results[1][0]):
        torch.testing.assert_close(a, b)
    assert ('gamma' in ''.join(results[0][1])) == (step in ('fewer_norms', 'layer_norm', 'separate_downsampling'))


def test_frozen_stages_and_norm_eval():
    model = ConvNeXtRoadmap('resnet', SMALL, frozen_stages=0, norm_eval=True).train()
    for name, p in model.named_parameters():
        assert p.requires_grad == (name.split('.')[0] not in ('conv1', 'bn1', 'layer1')), name
    assert not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert model.layer2[0].conv1.training  # norm_eval holds the norms only
    convnext = ConvNeXtRoadmap(regime=SMALL, frozen_stages=1).train()
    frozen = {n.split('.')[0] + '.' + n.split('.')[1] for n, p in convnext.named_parameters() if not p.requires_grad}
    assert frozen == {'downsample_layers.0', 'downsample_layers.1', 'stages.0', 'stages.1', 'norm0.weight',
                      'norm0.bias', 'norm1.weight', 'norm1.bias'}


def test_out_indices_build_only_what_is_used():
    model = ConvNeXtRoadmap('gelu', out_indices=(-1, 1))
    assert model.out_channels == (192, 768) and model.out_strides == (8, 32)
    partial = ConvNeXtRoadmap('wider', SMALL, out_indices=(1,))
    assert not hasattr(partial, 'layer3') and partial(torch.randn(1, 3, 64, 64))[0].shape == (1, 64, 8, 8)
    separate = ConvNeXtRoadmap(regime=SMALL, out_indices=(0, 2))
    assert len(separate.stages) == 3 and not hasattr(separate, 'norm1') and separate.out_channels == (8, 32)


def layer_decay_lr(model: nn.Module, **paramwise) -> dict:
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
        constructor='convnext_dense.ConvNeXtLayerDecayOptimizerConstructor',
        paramwise_cfg=dict(decay_rate=0.5, **paramwise)))
    by_id = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    return {name: by_id[id(p)] for name, p in model.named_parameters()}


def test_layer_decay_table_of_a_resnet_style_step():
    """ResNet-50: the stem is layer 0, stage s's blocks in threes from 1 + sum(ceil(d / 3)) of the stages before, the
    last stage L = 6, the neck L + 1: lr = 0.5 ** (7 - id)."""
    model = nn.ModuleDict(dict(backbone=ConvNeXtRoadmap('resnet'), neck=nn.Conv2d(2048, 8, 1)))
    assert model.backbone.num_layers() == 6 and ConvNeXtRoadmap('resnet', 'resnet200').num_layers() == 22
    lr = layer_decay_lr(model)
    table = {'backbone.conv1.weight': 0, 'backbone.bn1.bias': 0, 'backbone.layer1.2.conv3.weight': 1,
             'backbone.layer2.0.downsample.0.weight': 2, 'backbone.layer2.2.bn2.weight': 2,
             'backbone.layer2.3.conv1.weight': 3, 'backbone.layer3.0.conv2.weight': 4, 'backbone.layer3.5.bn3.bias': 5,
             'backbone.layer4.0.downsample.1.weight': 6, 'backbone.layer4.2.conv3.weight': 6, 'neck.weight': 7}
    assert {name: lr[name] for name in table} == {name: 0.5**(7 - i) for name, i in table.items()}
    stage_wise = layer_decay_lr(model, decay_type='stage_wise')
    assert [stage_wise[f'backbone.{n}'] for n in ('conv1.weight', 'layer1.0.conv1.weight', 'layer3.5.bn3.bias')] == \
        [0.5**7, 0.5**6, 0.5**4]


def test_layer_decay_of_the_convnext_end_is_convnexts():
    ours = nn.ModuleDict(dict(backbone=ConvNeXtRoadmap('separate_downsampling')))
    theirs = nn.ModuleDict(dict(backbone=ConvNeXt('tiny')))
    assert layer_decay_lr(ours) == layer_decay_lr(theirs)


def test_bad_input_names_what_is_valid(tmp_path):
    with pytest.raises(ValueError, match="unknown roadmap step 'kernel_3'.*resnet, stage_ratio"):
        ConvNeXtRoadmap('kernel_3')
    with pytest.raises(ValueError, match="unknown roadmap regime 'resnet101'; valid: resnet50, resnet200"):
        roadmap_output_shape('gelu', 'resnet101')
    with pytest.raises(ValueError, match='frozen_stages=4'):
        ConvNeXtRoadmap('gelu', frozen_stages=4)
    path = tmp_path / 'r50.pth'
    torch.save(ConvNeXtRoadmap('resnet').state_dict(), path)
    with pytest.raises(ValueError, match=r"conv1.weight has shape \(64, 3, 7, 7\) in the file but \(64, 3, 4, 4\) in "
                                         r"roadmap step 'patchify'"):
        ConvNeXtRoadmap('patchify', init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()
    torch.save({'head.weight': torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="no tensor of .* fits roadmap step 'gelu'"):
        ConvNeXtRoadmap('gelu', init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()
    with pytest.raises(ValueError, match='at least 32'):
        ConvNeXtRoadmap('resnet')(torch.randn(1, 3, 16, 64))


def test_the_table_states_paper_and_ours_and_saves_json(tmp_path):
    import json

    from convnext_dense.tools.roadmap import format_table, roadmap_table, save_table
    rows = roadmap_table('resnet50', speed=False, steps=['resnet', 'layer_norm'])
    assert [r['step'] for r in rows] == ['resnet', 'layer_norm']
    assert rows[0]['paper_top1'] == 78.82 and rows[0]['gflops'] == pytest.approx(4.087, abs=1e-3)
    assert rows[0]['params_m'] == pytest.approx(23.51, abs=0.01)  # mmdet's ResNet-50 without its classifier
    assert rows[1]['paper_gflops'] == 4.46 and rows[1]['paper_gflops_implied'] == 4.15
    table = format_table('resnet50', rows)
    assert '| layer_norm | 81.47 | 4.46 (4.15) | 4.145 | 25.07 | not measured |' in table
    save_table(str(tmp_path / 't.json'), 'resnet50', rows, dict(note='test'))
    assert json.loads((tmp_path / 't.json').read_text())['rows'] == rows


@pytest.mark.parametrize('scope, type_name', [('mmdet', 'ConvNeXtRoadmap'), ('mmseg', 'ConvNeXtRoadmap'),
                                              ('mmengine', 'convnext_dense.ConvNeXtRoadmap')])
def test_registered_like_convnext(scope, type_name):
    from mmengine.registry import MODELS as ROOT_MODELS
    from mmengine.registry import DefaultScope
    registry = ROOT_MODELS if scope == 'mmengine' else __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope), torch.device('meta'):
        model = registry.build(dict(type=type_name, step='gelu', regime='resnet200', out_indices=(1, 3)))
    assert isinstance(model, ConvNeXtRoadmap) and model.out_channels == (256, 1024)
