"""Layer-wise / stage-wise lr decay on the real backbone, checked against the official rule parameter by parameter."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmengine.registry import DefaultScope
from torch import nn

from convnext_dense import ConvNeXt, ConvNeXtRoadmap, layer_decay_param_groups


def official_layer_id(name: str, num_layers: int) -> int:
    """``get_num_layer_layer_wise`` of the official ConvNeXt dense code, transcribed as the independent check."""
    parts = name.split('.')
    if name.startswith('backbone.downsample_layers'):
        stage = int(parts[2])
        return {0: 0, 1: 2, 2: 3, 3: num_layers}[stage]
    if name.startswith('backbone.stages'):
        stage, block = int(parts[2]), int(parts[3])
        return {0: 1, 1: 2, 2: 3 + block // 3, 3: num_layers}[stage]
    return num_layers + 1


def official_stage_id(name: str, num_layers: int) -> int:
    """``get_num_layer_stage_wise`` of the official code."""
    if name.startswith('backbone.downsample_layers'):
        return 0
    if name.startswith('backbone.stages'):
        return int(name.split('.')[2]) + 1
    return num_layers + 1


class Detector(nn.Module):
    """A backbone, a neck and a head, named as in mmdet/mmseg models."""

    def __init__(self, arch='tiny', **kwargs):
        super().__init__()
        self.backbone = ConvNeXt(arch, **kwargs)
        self.neck = nn.Conv2d(self.backbone.out_channels[-1], 8, 1)
        self.head = nn.Linear(8, 2)


def build(model, decay_rate, decay_type='layer_wise', num_layers=None, wrapper='OptimWrapper', **paramwise):
    paramwise_cfg = dict(decay_rate=decay_rate, decay_type=decay_type, **paramwise)
    if num_layers is not None:
        paramwise_cfg['num_layers'] = num_layers
    return build_optim_wrapper(model, dict(
        type=wrapper, optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
        constructor='convnext_dense.ConvNeXtLayerDecayOptimizerConstructor', paramwise_cfg=paramwise_cfg))


def per_parameter(optim_wrapper, model):
    """{name: (lr, weight_decay)} from the optimizer's merged groups."""
    by_id = {}
    for group in optim_wrapper.optimizer.param_groups:
        for p in group['params']:
            by_id[id(p)] = (group['lr'], group['weight_decay'])
    return {name: by_id[id(p)] for name, p in model.named_parameters() if id(p) in by_id}


@pytest.mark.parametrize('arch, decay_type, decay_rate, num_layers', [
    ('tiny', 'layer_wise', 0.7, 6), ('small', 'layer_wise', 0.7, 12),
    ('tiny', 'stage_wise', 0.9, 6), ('small', 'stage_wise', 0.9, 12)])
def test_published_settings_follow_the_official_rule_parameter_by_parameter(arch, decay_type, decay_rate, num_layers):
    model = Detector(arch)
    official = official_layer_id if decay_type == 'layer_wise' else official_stage_id
    got = per_parameter(build(model, decay_rate, decay_type, num_layers), model)
    assert len(got) == sum(1 for _ in model.parameters())
    for name, param in model.named_parameters():
        lr, wd = got[name]
        assert lr == pytest.approx(2e-4 * decay_rate**(num_layers + 1 - official(name, num_layers)), rel=1e-12), name
        no_decay = param.ndim == 1 or name.endswith('.bias')
        assert wd == (0.0 if no_decay else 0.05), name


def test_derived_num_layers_equal_the_published_ones():
    assert ConvNeXt('tiny').num_layers() == 6
    assert ConvNeXt('small').num_layers() == 12 == ConvNeXt('xlarge').num_layers()
    model = Detector('small')
    assert per_parameter(build(model, 0.7), model) == per_parameter(build(model, 0.7, num_layers=12), model)


def test_decay_rate_one_half_gives_exact_powers_of_two():
    model = Detector('tiny')
    got = per_parameter(build(model, 0.5), model)
    expected = {'backbone.downsample_layers.0.0.weight': 7, 'backbone.stages.0.2.pwconv1.weight': 6,
                'backbone.downsample_layers.1.1.weight': 5, 'backbone.stages.2.0.dwconv.weight': 4,
                'backbone.stages.2.8.pwconv2.weight': 2, 'backbone.stages.3.2.gamma': 1,
                'backbone.norm3.weight': 0, 'neck.weight': 0, 'head.bias': 0}
    for name, power in expected.items():
        assert got[name][0] == 2e-4 / 2**power, name


def test_worked_values_of_the_recipe_notes():
    model = Detector('tiny')
    got = {n: lr / 2e-4 for n, (lr, _) in per_parameter(build(model, 0.7, num_layers=6), model).items()}
    for name, scale in [('backbone.downsample_layers.0.0.weight', 0.0824), ('backbone.stages.0.0.gamma', 0.1176),
                        ('backbone.stages.1.0.gamma', 0.1681), ('backbone.stages.2.0.gamma', 0.2401),
                        ('backbone.stages.2.8.gamma', 0.49), ('backbone.stages.3.0.gamma', 0.7),
                        ('head.weight', 1.0)]:
        assert got[name] == pytest.approx(scale, abs=1e-4), name


def test_groups_are_merged_by_options_and_frozen_parameters_left_out():
    model = Detector('tiny', frozen_stages=0)
    optim_wrapper = build(model, 0.7)
    groups = optim_wrapper.optimizer.param_groups
    # layer ids 2..7 (the stem and stage 0 are frozen), each with and without weight decay
    assert len(groups) == len({(g['lr'], g['weight_decay']) for g in groups}) == 12
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in groups for p in g['params']} == trainable
    assert not model.backbone.stages[0][0].pwconv1.weight.requires_grad


def test_a_zero_base_lr_builds_all_groups_at_zero():
    """lr=0 (a probe that freezes by lr, a scheduler's start) builds; the logged table divided by it once."""
    model = Detector('tiny')
    optimizer = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.0, weight_decay=0.05),
        constructor='convnext_dense.ConvNeXtLayerDecayOptimizerConstructor', paramwise_cfg=dict(decay_rate=0.7)))
    assert {group['lr'] for group in optimizer.optimizer.param_groups} == {0.0}


def test_custom_keys_apply_on_top_of_the_decay():
    model = Detector('tiny')
    plain = per_parameter(build(model, 0.7), model)
    custom = per_parameter(build(model, 0.7, custom_keys={'neck': dict(lr_mult=0.1, decay_mult=0.0)}), model)
    assert custom['neck.weight'] == (pytest.approx(plain['neck.weight'][0] * 0.1), 0.0)
    assert custom['head.weight'] == plain['head.weight']


def test_outside_backbone_mmengine_gives_the_rest_the_default_constructors_options():
    """Biases outside the backbone are decayed as mmengine's default constructor decays them; the backbone keeps the
    ConvNeXt rule (its biases undecayed, its layers decayed)."""
    model = Detector('tiny')
    ours = per_parameter(build(model, 0.7, outside_backbone='mmengine', custom_keys={'head': dict(lr_mult=2.0)}),
                         model)
    official = per_parameter(build(model, 0.7), model)
    assert ours['neck.bias'] == (2e-4, 0.05) and official['neck.bias'] == (2e-4, 0.0)
    assert ours['head.weight'] == ours['head.bias'] == (pytest.approx(4e-4), 0.05)
    assert {n: v for n, v in ours.items() if n.startswith('backbone.')} == \
        {n: v for n, v in official.items() if n.startswith('backbone.')}


def test_plain_names_resolve_in_the_mmdet_and_mmseg_scopes():
    model = Detector('atto')
    for scope in ('mmdet', 'mmseg'):
        __import__(f'{scope}.registry')
        with DefaultScope.overwrite_default_scope(scope):
            wrapper = build_optim_wrapper(model, dict(
                optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
                constructor='ConvNeXtLayerDecayOptimizerConstructor', paramwise_cfg=dict(decay_rate=0.9)))
        assert len(wrapper.optimizer.param_groups) > 1


def test_amp_wrapper_and_ddp(monkeypatch, tmp_path):
    # mmengine builds AmpOptimWrapper only where CUDA is available; lift just that device check on this CPU machine.
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    torch.distributed.init_process_group('gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    try:
        model = Detector('atto')
        ddp = nn.parallel.DistributedDataParallel(model)
        wrapper = build(ddp, 0.7, wrapper='AmpOptimWrapper')
        assert type(wrapper).__name__ == 'AmpOptimWrapper'
        assert per_parameter(wrapper, model) == per_parameter(build(model, 0.7), model)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.parametrize('model, kwargs, match', [
    (nn.Sequential(nn.Linear(2, 2)), {}, r'exactly one backbone with num_layers\(\) and layer_id'),
    (Detector('atto'), dict(decay_type='block_wise'), "decay_type='block_wise'"),
    (Detector('atto'), dict(decay_rate=0.0), 'decay_rate=0.0'),
    (Detector('atto'), dict(decay_rate=1.5), 'decay_rate=1.5'),
    (Detector('small'), dict(num_layers=6), 'num_layers=6 is smaller than the 12 layers'),
    (Detector('atto'), dict(outside_backbone='stock'), "outside_backbone='stock'; valid: \\('convnext', 'mmengine'\\)"),
])
def test_errors(model, kwargs, match):
    kwargs = dict(dict(decay_rate=0.7), **kwargs)
    with pytest.raises(ValueError, match=match):
        build(model, **kwargs)


def plain_per_parameter(groups, model):
    """{name: (lr, weight_decay)} from ``layer_decay_param_groups``' groups, each parameter in one group only."""
    by_id = {}
    for group in groups:
        assert set(group) == {'params', 'lr', 'weight_decay'}
        for p in group['params']:
            assert id(p) not in by_id
            by_id[id(p)] = (group['lr'], group['weight_decay'])
    return {name: by_id[id(p)] for name, p in model.named_parameters() if id(p) in by_id}


def with_4d_bias(model: nn.Module) -> nn.Module:
    """``model`` with a module holding a 4-D ``bias`` and ``weight``, as some heads have (per-channel offsets)."""
    model.offset = nn.Module()
    model.offset.weight = nn.Parameter(torch.ones(1, 8, 1, 1))
    model.offset.bias = nn.Parameter(torch.zeros(1, 8, 1, 1))
    return model


@pytest.mark.parametrize('model, decay_type, num_layers', [
    (with_4d_bias(Detector('tiny')), 'layer_wise', None), (Detector('small'), 'stage_wise', 12),
    (Detector('tiny', frozen_stages=1), 'layer_wise', 8),
    (nn.ModuleDict(dict(backbone=ConvNeXtRoadmap('resnet'), neck=nn.Conv2d(2048, 8, 1))), 'layer_wise', None),
    (ConvNeXt('atto'), 'stage_wise', None)])  # the backbone alone: no neck, nothing at the base lr but its norms
def test_plain_param_groups_equal_the_mm_constructors(model, decay_type, num_layers):
    """``convnext_dense.layer_decay_param_groups`` gives every parameter the lr and weight decay the mmengine
    constructor gives it, exactly, and leaves out the frozen ones as it does."""
    groups = layer_decay_param_groups(model, lr=2e-4, weight_decay=0.05, decay_rate=0.7, decay_type=decay_type,
                                      num_layers=num_layers)
    plain = plain_per_parameter(groups, model)
    assert plain == per_parameter(build(model, 0.7, decay_type, num_layers), model)
    assert set(plain) == {n for n, p in model.named_parameters() if p.requires_grad}
    assert len(groups) == len({(g['lr'], g['weight_decay']) for g in groups})
    torch.optim.AdamW(groups)  # takes them as they are


def test_plain_param_groups_follow_the_official_rule_and_leave_out_frozen():
    model = with_4d_bias(Detector('tiny', frozen_stages=0))
    plain = plain_per_parameter(layer_decay_param_groups(model, 1.0, 0.05, 0.5), model)
    assert plain['offset.bias'] == (1.0, 0.0) and plain['offset.weight'] == (1.0, 0.05)  # by name, not by shape
    assert 'backbone.downsample_layers.0.0.weight' not in plain and 'backbone.stages.0.2.gamma' not in plain
    assert plain['backbone.stages.1.0.pwconv1.weight'] == (0.5**(7 - official_layer_id(
        'backbone.stages.1.0.pwconv1.weight', 6)), 0.05)
    assert plain['backbone.stages.1.0.pwconv1.bias'][1] == plain['backbone.norm3.weight'][1] == 0.0
    assert plain['neck.weight'] == (1.0, 0.05) and plain['neck.bias'] == plain['head.bias'] == (1.0, 0.0)


@pytest.mark.parametrize('model, kwargs, error, match', [
    (nn.Linear(2, 2), {}, ValueError, r'exactly one backbone with num_layers\(\) and layer_id.*found 0'),
    (nn.ModuleList([ConvNeXt('atto'), ConvNeXt('atto')]), {}, ValueError, r"found 2 in ModuleList: \['0', '1'\]"),
    (Detector('atto'), dict(decay_rate=0.0), ValueError, r'decay_rate=0.0 must be in \(0, 1\]'),
    (Detector('atto'), dict(decay_rate='0.7'), TypeError, "decay_rate='0.7' must be a number"),
    (Detector('atto'), dict(decay_type='block_wise'), ValueError, "decay_type='block_wise' is unknown; valid"),
    (Detector('small'), dict(num_layers=6), ValueError, 'num_layers=6 is smaller than the 12 layers of the ConvNeXt'),
    (Detector('atto'), dict(num_layers=6.5), TypeError, 'num_layers=6.5 must be an int'),
    (Detector('atto'), dict(lr=-1.0), ValueError, 'lr=-1.0 must be >= 0'),
    (Detector('atto'), dict(weight_decay=None), TypeError, 'weight_decay=None must be a number'),
])
def test_plain_param_groups_errors(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        layer_decay_param_groups(model, **dict(dict(lr=1e-4, weight_decay=0.05, decay_rate=0.7), **kwargs))


class TwoLayerBackbone(nn.Module):
    """Not a ConvNeXt: any backbone that answers num_layers() and layer_id() gets the rule."""

    def __init__(self):
        super().__init__()
        self.stem, self.top = nn.Linear(2, 4), nn.Linear(4, 4)

    def num_layers(self):
        return 1

    def layer_id(self, name, decay_type, num_layers):
        return 0 if name.startswith('stem.') else num_layers


def test_the_backbone_is_found_by_its_protocol_not_its_class():
    model = nn.ModuleDict(dict(backbone=TwoLayerBackbone(), head=nn.Linear(4, 2)))
    model.encoder = nn.Module()
    model.encoder.num_layers = 6  # an attribute, as mmdet's transformer encoders have: not a backbone
    plain = plain_per_parameter(layer_decay_param_groups(model, 2e-4, 0.05, 0.5), model)
    assert plain == per_parameter(build(model, 0.5), model)
    assert plain['backbone.stem.weight'] == (2e-4 / 4, 0.05) and plain['backbone.top.bias'] == (2e-4 / 2, 0.0)
    assert plain['head.weight'] == (2e-4, 0.05)
