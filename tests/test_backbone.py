"""The ConvNeXt backbone: shapes, contract, gradients, checkpointing, freezing, V2 blocks, errors, numerics."""
import multiprocessing

import pytest
import torch

from conftest import TINY, randomize
from convnext_dense import ARCH_SETTINGS, ConvNeXt, output_shape
from convnext_dense.testing.official import official_from


@pytest.mark.parametrize('arch', ['atto', 'femto', TINY, dict(depths=(2, 1, 1), channels=(8, 12, 16))])
@pytest.mark.parametrize('size', [(64, 64), (67, 97), (32, 45)])
def test_output_shapes_follow_the_contract(arch, size):
    model = ConvNeXt(arch).eval()
    outs = model(torch.randn(2, 3, *size))
    assert len(outs) == len(model.out_channels) == len(model.out_strides)
    for out, c, s in zip(outs, model.out_channels, model.out_strides):
        assert out.shape == (2, c, size[0] // s, size[1] // s)


def test_arch_table_and_contract():
    model = ConvNeXt('tiny')
    assert model.out_channels == ARCH_SETTINGS['tiny']['channels'] == (96, 192, 384, 768)
    assert model.out_strides == (4, 8, 16, 32)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(27.82e6, rel=1e-3)
    partial = ConvNeXt('tiny', out_indices=(-1, 1))
    assert partial.out_indices == (1, 3) and partial.out_channels == (192, 768) and partial.out_strides == (8, 32)
    assert not hasattr(partial, 'norm0') and not hasattr(partial, 'norm2')
    assert len(ConvNeXt('tiny', out_indices=(1,)).stages) == 2  # stages after the last output are not built


@pytest.mark.parametrize('arch, out_indices', [('atto', None), ('tiny', (-1, 1)), (TINY, (2,))])
def test_output_shape_states_what_the_backbone_returns(arch, out_indices):
    """What configs read for their necks (``output_shape``) is what the backbone builds and returns."""
    stated = output_shape(arch, out_indices)
    model = ConvNeXt(arch, out_indices=out_indices).eval()
    assert model.output_shape() == stated
    assert (model.out_indices, model.out_channels, model.out_strides) == stated
    outs = model(torch.randn(1, 3, 64, 96))
    assert [(out.shape[1], 64 // out.shape[2], 96 // out.shape[3]) for out in outs] == \
        list(zip(stated.channels, stated.strides, stated.strides))


def test_channels_last_compute_returns_the_same_contiguous_nchw_maps():
    fast = randomize(ConvNeXt(TINY)).eval()
    plain = ConvNeXt(TINY, channels_last=False).eval()
    plain.load_state_dict(fast.state_dict())
    x = torch.randn(2, 3, 70, 90)
    for a, b in zip(fast(x), plain(x)):
        assert a.is_contiguous() and b.is_contiguous()  # mmcv's RoIAlign misreads channels-last maps
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_roi_align_reads_our_maps_correctly():
    from mmcv.ops import roi_align
    feats = randomize(ConvNeXt(TINY)).eval()(torch.randn(1, 3, 64, 64))[0]
    rois = torch.tensor([[0, 1.0, 2.0, 11.0, 13.0]])
    torch.testing.assert_close(roi_align(feats, rois, (3, 3), 1.0, 2, 'avg', True),
                               roi_align(feats.clone(memory_format=torch.contiguous_format), rois, (3, 3), 1.0, 2,
                                         'avg', True))


@pytest.mark.parametrize('use_grn', [False, True])
def test_matches_the_official_formulation(use_grn):
    model = randomize(ConvNeXt(TINY, use_grn=use_grn, layer_scale_init_value=0 if use_grn else 1e-6)).eval()
    x = torch.randn(2, 3, 77, 64)
    for ours, official in zip(model(x), official_from(model)(x)):
        torch.testing.assert_close(ours, official, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('use_grn', [False, True])
def test_every_trainable_parameter_gets_a_gradient(use_grn):
    model = randomize(ConvNeXt(TINY, drop_path_rate=0.1, use_grn=use_grn, out_indices=(0, 2, 3)))
    sum(o.square().mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_activation_checkpointing_gives_the_same_outputs_and_gradients():
    plain = randomize(ConvNeXt(TINY, drop_path_rate=0.3)).train()
    ckpt = ConvNeXt(TINY, drop_path_rate=0.3, with_cp=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 64)
    results = []
    for model in (plain, ckpt):
        torch.manual_seed(7)  # same drop-path draws; checkpointing replays them in the recomputation
        outs = model(x)
        sum(o.square().sum() for o in outs).backward()
        results.append((outs, {n: p.grad for n, p in model.named_parameters()}))
    (outs_a, grads_a), (outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=name)


def test_frozen_stages_stay_frozen_and_in_eval_mode():
    model = ConvNeXt(TINY, frozen_stages=1, drop_path_rate=0.2)
    model.train()
    frozen = ['downsample_layers.0', 'downsample_layers.1', 'stages.0', 'stages.1', 'norm0', 'norm1']
    for name, module in model.named_modules():
        is_frozen = any(name == f or name.startswith(f + '.') for f in frozen)
        if name:
            assert module.training != is_frozen, name
    for name, p in model.named_parameters():
        assert p.requires_grad != any(name.startswith(f + '.') for f in frozen), name
    sum(o.sum() for o in model(torch.randn(1, 3, 64, 64))).backward()
    assert all(p.grad is None for p in model.stages[1].parameters())
    assert model.stages[2][0].pwconv1.weight.grad is not None


def test_drop_path_is_inactive_in_eval():
    model = randomize(ConvNeXt(TINY, drop_path_rate=0.9)).eval()
    x = torch.randn(2, 3, 64, 64)
    for a, b in zip(model(x), model(x)):
        torch.testing.assert_close(a, b)
    model.train()
    assert any(not torch.equal(a, b) for a, b in zip(model(x), model(x)))


def test_v2_blocks_have_grn_and_no_layer_scale():
    model = ConvNeXt('atto', use_grn=True, layer_scale_init_value=0)
    names = {n for n, _ in model.named_parameters()}
    assert 'stages.0.0.grn.gamma' in names and 'stages.0.0.grn.beta' in names
    assert not any(n.endswith('.gamma') and '.grn.' not in n for n in names)
    v1 = ConvNeXt('atto')
    assert 'stages.0.0.gamma' in {n for n, _ in v1.named_parameters()}
    assert not any('.grn.' in n for n, _ in v1.named_parameters())


def test_drop_path_rates_rise_linearly_over_all_blocks():
    model = ConvNeXt('tiny', drop_path_rate=0.4)
    rates = [block.drop_path.drop_prob for stage in model.stages for block in stage]
    assert rates[0] == 0 and rates[-1] == pytest.approx(0.4) and len(rates) == 18
    assert all(b > a for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize('kwargs, match', [
    (dict(arch='tinyy'), "unknown ConvNeXt arch 'tinyy'"),
    (dict(arch=dict(depths=(1, 1))), 'lacks'),
    (dict(arch=dict(depths=(1, 1), channels=(8,))), 'equal length'),
    (dict(out_indices=(4,)), 'out of range'),
    (dict(out_indices=(-5,)), 'out of range'),
    (dict(out_indices=(1, -3)), 'each once'),
    (dict(out_indices=()), 'at least one'),
    (dict(frozen_stages=4), 'frozen_stages=4'),
    (dict(frozen_stages=-2), 'frozen_stages=-2'),
    (dict(drop_path_rate=-0.1), 'drop_path_rate=-0.1'),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ConvNeXt(**kwargs)


def test_too_small_input_names_the_minimum_size():
    model = ConvNeXt(TINY)
    with pytest.raises(ValueError, match='at least 32'):
        model(torch.randn(1, 3, 31, 64))
    assert ConvNeXt(TINY, out_indices=(0, 1))(torch.randn(1, 3, 8, 8))[1].shape == (1, 16, 1, 1)


def _fused_calls(monkeypatch) -> list:
    """Record every block that runs the fused CPU inference path."""
    from convnext_dense.models import fused
    calls, block_mlp = [], fused.block_mlp
    monkeypatch.setattr(fused, 'block_mlp', lambda block, x, y: calls.append(block) or block_mlp(block, x, y))
    return calls


@pytest.mark.parametrize('use_grn', [False, True])
def test_fused_inference_path_matches_the_plain_ops(use_grn, monkeypatch):
    """Without gradients on CPU the MLP runs as two oneDNN products with fused GELU and residual epilogues (layer
    scale folded into the weights): the same function as the plain ops and the official formulation to 1e-5."""
    calls = _fused_calls(monkeypatch)
    model = randomize(ConvNeXt(TINY, use_grn=use_grn, layer_scale_init_value=0 if use_grn else 1e-6)).eval()
    x = torch.randn(2, 3, 77, 64)
    plain = model(x)  # gradients enabled: the plain ops
    assert not calls
    with torch.no_grad():
        fast = model(x)
    assert len(calls) == sum(TINY['depths'])
    for a, b, c in zip(fast, plain, official_from(model)(x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)


def test_torch_compile_traces_the_backbone_in_one_graph():
    """The fused path's checks fold away under torch.compile: no graph break per block (each broken block was compiled
    once per width and hit dynamo's recompile limit, so compiled inference ran slower than eager)."""
    import torch._dynamo
    with torch.no_grad():
        explained = torch._dynamo.explain(ConvNeXt(TINY).eval())(torch.randn(1, 3, 64, 64))
    assert explained.graph_break_count == 0, [b.reason for b in explained.break_reasons]


def test_fused_weights_follow_parameter_updates_and_copies():
    import copy
    model = randomize(ConvNeXt(TINY)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        model(x)  # fills the cache
        for p in model.parameters():
            p.mul_(1.1)  # an in-place update (an optimizer step) bumps the version counters
        fast = model(x)
        twin = copy.deepcopy(model)  # the cache holds oneDNN tensors: a copy starts without it
        assert all(torch.equal(a, b) for a, b in zip(twin(x), fast))
    for a, b in zip(fast, model(x)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


BF16_TOLERANCE = 0.03  # largest |bf16 - fp32| relative to the map's largest |value|, as docs/benchmarks.md states


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason='this CPU lacks bf16 support')
@pytest.mark.parametrize('use_grn', [False, True])
def test_bf16_inference_deviates_from_fp32_within_the_stated_bound(use_grn, monkeypatch):
    calls = _fused_calls(monkeypatch)
    model = randomize(ConvNeXt(TINY, use_grn=use_grn, layer_scale_init_value=0 if use_grn else 1e-6)).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        reference = model(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            autocast_out = model(x)
        bf16_out = model.to(torch.bfloat16)(x.bfloat16())
    assert len(calls) == 3 * sum(TINY['depths'])
    for got in (autocast_out, bf16_out):
        for g, r in zip(got, reference):
            assert g.dtype == torch.bfloat16
            assert 0 < ((g.float() - r).abs().max() / r.abs().max()).item() < BF16_TOLERANCE


def test_depthwise_weights_have_their_gradient_strides():
    """Channels-last compute returns depthwise weight gradients with channels-last strides; the weights are stored
    with the same (still contiguous) strides, which DDP's buckets copy, and safetensors saves them."""
    from safetensors.torch import save
    model = ConvNeXt(TINY)
    sum(o.sum() for o in model(torch.randn(1, 3, 64, 64))).backward()
    for name, p in model.named_parameters():
        if name.endswith('dwconv.weight'):
            assert p.is_contiguous() and p.grad.stride() == p.stride() == (49, 1, 7, 1), name
    assert save(model.state_dict())


def test_ddp_gradients_have_their_bucket_strides():
    """Two gloo processes with DDP's "grad strides do not match bucket view strides" warning raised as an error: every
    gradient (the channels-last depthwise ones included) has its parameter's strides, so DDP copies none of them
    through a strided view in every step."""
    from convnext_dense.tools.bench_ddp import ddp_steps
    assert ddp_steps(TINY, (2, 3, 64, 64), steps=2, strict=True, timeout=60) > 0


def test_ddp_steps_kill_processes_still_running_at_the_timeout():
    """A hung rank ends as a TimeoutError naming it, its processes killed, instead of a test run that never ends."""
    from convnext_dense.tools.bench_ddp import ddp_steps
    with pytest.raises(TimeoutError, match=r'rank\(s\) \[0, 1\] still running after 0.01 s'):
        ddp_steps(TINY, (2, 3, 64, 64), steps=1000, timeout=0.01)
    assert not multiprocessing.active_children()
