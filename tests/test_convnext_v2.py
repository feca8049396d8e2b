"""ConvNeXt V2: the official FCMAE files load (through init_cfg and tools/convert_checkpoint.py), the V2 and RTMDet
files have download URLs, and GRN holds in half precision (PyTorch and a float16 ONNX export).

The FCMAE file is written from a tiny V2 model by an inverse of the published mapping written here from its formula;
the inverse is checked by a round trip through this file's own transcription of the official ``remap_checkpoint_keys``
(ConvNeXt-V2 ``utils.py``), not through ``convnext_dense.checkpoint``, so loader and test cannot share a mistake.
"""
import math
import os
import re
from collections import OrderedDict
from typing import Dict

import numpy as np
import pytest
import torch
from test_stock_tools import stock_tool
from torch import Tensor

from conftest import REPO, TINY, randomize, run_tool
from convnext_dense import ConvNeXt
from convnext_dense.checkpoint import OFFICIAL_CHECKPOINTS, load_backbone_checkpoint
from convnext_dense.models.layers import GRN
from convnext_dense.synthetic.ade import write_ade_demo
from convnext_dense.synthetic.coco import write_coco_demo

V2 = dict(arch=TINY, use_grn=True, layer_scale_init_value=0.0)
DECODER = {'mask_token': (1, 16, 1, 1), 'proj.weight': (16, 32, 1, 1), 'proj.bias': (16,),
           'decoder.0.dwconv.weight': (16, 1, 7, 7), 'decoder.0.grn.gamma': (1, 1, 1, 64),
           'pred.weight': (48, 16, 1, 1), 'pred.bias': (48,)}


def remap_checkpoint_keys(ckpt: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The official fine-tuning code's mapping of an FCMAE state dict to the dense one (ConvNeXt-V2 utils.py)."""
    new_ckpt = OrderedDict()
    for k, v in ckpt.items():
        if k.startswith('encoder'):
            k = '.'.join(k.split('.')[1:])
        if k.endswith('kernel'):
            k = '.'.join(k.split('.')[:-1])
            new_k = k + '.weight'
            if len(v.shape) == 3:
                kv, in_dim, out_dim = v.shape
                ks = int(math.sqrt(kv))
                new_ckpt[new_k] = v.permute(2, 1, 0).reshape(out_dim, in_dim, ks, ks).transpose(3, 2)
            elif len(v.shape) == 2:
                kv, dim = v.shape
                ks = int(math.sqrt(kv))
                new_ckpt[new_k] = v.permute(1, 0).reshape(dim, 1, ks, ks).transpose(3, 2)
            continue
        elif 'ln' in k or 'linear' in k:
            k = k.split('.')
            k.pop(-2)
            new_k = '.'.join(k)
        else:
            new_k = k
        new_ckpt[new_k] = v
    for k, v in new_ckpt.items():
        if k.endswith('bias') and len(v.shape) != 1:
            new_ckpt[k] = v.reshape(-1)
        elif 'grn' in k:
            new_ckpt[k] = v.unsqueeze(0).unsqueeze(1)
    return new_ckpt


def to_fcmae(state_dict: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """A dense V2 state dict (official names) in the FCMAE encoder's sparse layout: the published formula inverted.

    dense conv (out, in, k, k) = kernel.permute(2, 1, 0).reshape(out, in, k, k).transpose(3, 2), so
    kernel = dense.transpose(3, 2).reshape(out, in, k * k).permute(2, 1, 0); depthwise likewise with (k * k, C).
    """
    sparse = {}
    for key, v in state_dict.items():
        sparse_conv = re.match(r'(downsample_layers\.[1-9]\.1|stages\.\d+\.\d+\.dwconv)\.(weight|bias)$', key)
        if sparse_conv and sparse_conv.group(2) == 'weight':
            out, inp, k, _ = v.shape
            kernel = v.transpose(3, 2).reshape(out, inp, k * k).permute(2, 1, 0)
            sparse[f'encoder.{sparse_conv.group(1)}.kernel'] = kernel.squeeze(1) if 'dwconv' in key else kernel
            continue
        if sparse_conv or '.grn.' in key:
            v = v.reshape(1, -1)  # sparse conv biases and GRN parameters are (1, C)
        key = re.sub(r'^(downsample_layers\.[1-9]\.0|stages\.\d+\.\d+\.norm)\.', r'\1.ln.', key)
        key = re.sub(r'\.(pwconv\d)\.', r'.\1.linear.', key)
        sparse['encoder.' + key] = v
    return sparse


def source_model() -> ConvNeXt:
    """A tiny V2 backbone with random weights, its output norms at init (an FCMAE file has none)."""
    model = randomize(ConvNeXt(**V2)).eval()
    for i in model.out_indices:
        getattr(model, f'norm{i}').reset_parameters()
    return model


def fcmae_file(model: ConvNeXt, path) -> str:
    """What an official FCMAE file holds: ``{'model': {encoder tensors, decoder tensors}}``."""
    gen = torch.Generator().manual_seed(1)
    decoder = {k: torch.randn(shape, generator=gen) for k, shape in DECODER.items()}
    encoder = to_fcmae({k: v for k, v in model.state_dict().items() if not k.startswith('norm')})
    torch.save({'model': {**encoder, **decoder}}, path)
    return str(path)


def features_equal(model: ConvNeXt, source: ConvNeXt) -> None:
    image = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        for got, expected in zip(model.eval()(image), source(image), strict=True):
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_fcmae_inverse_round_trips_through_the_published_remap():
    model = source_model()
    dense = {k: v.reshape(1, 1, 1, -1) if '.grn.' in k else v for k, v in model.state_dict().items()
             if not k.startswith('norm')}
    dwconv = dense['stages.0.0.dwconv.weight']
    assert not torch.equal(dwconv, dwconv.transpose(3, 2))  # a transposed kernel would not pass
    sparse = to_fcmae(dense)
    assert sparse['encoder.stages.0.0.dwconv.kernel'].shape == (49, TINY['channels'][0])
    assert sparse['encoder.downsample_layers.1.1.kernel'].shape == (4,) + TINY['channels'][:2]
    assert sparse['encoder.stages.0.0.grn.gamma'].shape == (1, 4 * TINY['channels'][0])
    remapped = remap_checkpoint_keys(sparse)
    assert remapped.keys() == dense.keys()
    for key, tensor in dense.items():
        assert torch.equal(remapped[key], tensor), key


def test_fcmae_file_loads_through_init_cfg_with_the_decoder_reported(tmp_path):
    source = source_model()
    path = fcmae_file(source, tmp_path / 'convnextv2_tiny_1k_224_fcmae.pt')
    model = ConvNeXt(**V2, init_cfg=dict(type='Pretrained', checkpoint=path))
    model.init_weights()
    features_equal(model, source)
    report = load_backbone_checkpoint(ConvNeXt(**V2), path)
    assert report.layout == 'fcmae' and report.container == 'model'
    assert len(report.loaded) == report.expected - 8 and not report.missing and not report.unexpected
    assert sorted(report.classifier) == sorted(DECODER)
    assert 'not backbone (classifier head, pre-training decoder), skipped (7)' in report.summary()


def test_fcmae_file_converts_through_the_tool(tmp_path):
    source = source_model()
    path = fcmae_file(source, tmp_path / 'fcmae.pt')
    out = run_tool('tools/convert_checkpoint.py', path, str(tmp_path / 'clean.safetensors'))
    assert 'fcmae layout' in out and 'pre-training decoder), skipped (7)' in out
    model = ConvNeXt(**V2)
    load_backbone_checkpoint(model, tmp_path / 'clean.safetensors')
    features_equal(model, source)


def test_every_v2_and_rtmdet_file_the_configs_name_has_a_download_url(tmp_path):
    pattern = r'convnextv2_\w+\.pt|convnext-base_in21k[\w-]+\.pth'
    named = {m for config in (REPO / 'configs').rglob('*.py') for m in re.findall(pattern, config.read_text())}
    assert {'convnextv2_base_1k_224_fcmae.pt', 'convnextv2_huge_22k_512_ema.pt'} <= named
    assert named <= set(OFFICIAL_CHECKPOINTS), named - set(OFFICIAL_CHECKPOINTS)
    url = 'https://dl.fbaipublicfiles.com/convnext/convnextv2/pt_only/convnextv2_base_1k_224_fcmae.pt'
    with pytest.raises(FileNotFoundError, match=re.escape(url)):
        load_backbone_checkpoint(ConvNeXt(**V2), tmp_path / 'convnextv2_base_1k_224_fcmae.pt')


def test_grn_in_half_precision_stays_finite_on_a_large_map():
    """The L2 norm over 256 x 256 positions of values near 400 exceeds float16's range (65504) unless it is
    accumulated in float32; the normalised output must match float32's."""
    grn = GRN(8)
    with torch.no_grad():
        grn.gamma.fill_(0.5)
        grn.beta.fill_(0.1)
    x = 400 + 50 * torch.randn(1, 256, 256, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        half, full = grn.half()(x.half()), grn.float()(x)
    assert half.dtype == torch.float16 and torch.isfinite(half).all()
    torch.testing.assert_close(half.float(), full, rtol=2e-3, atol=0.5)


def test_half_onnx_export_reduces_grn_in_float32_and_runs_finite(tmp_path):
    """The float16 graph's GRN reductions take float32 input (what runtimes with native float16 kernels need: a
    float16 ReduceL2 there overflows), and onnxruntime's output stays finite and close to float32 PyTorch. (The CPU
    runtime computes a float16 ReduceL2 in float32 anyway, so only the graph check fails on a float16 reduction.)"""
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    from convnext_dense.tools.export_onnx import export_onnx

    model = randomize(ConvNeXt(**V2)).eval()
    with torch.no_grad():
        for block in model.stages[0]:  # large activations where the map is largest: GRN norms beyond float16's range
            block.pwconv1.weight.mul_(400)
    path = str(tmp_path / 'v2_fp16.onnx')
    export_onnx(model, path, (64, 64), half=True)

    graph = onnx.shape_inference.infer_shapes(onnx.load(path)).graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.value_info, *graph.input, *graph.output)}
    assert types['image'] == onnx.TensorProto.FLOAT16
    reductions = [n for n in graph.node if n.op_type in ('ReduceL2', 'ReduceSumSquare')]
    assert len(reductions) == sum(TINY['depths'])  # one per GRN
    assert {types[n.input[0]] for n in reductions} == {onnx.TensorProto.FLOAT}

    image = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(3))
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    got = session.run(None, {'image': image.half().numpy()})
    with torch.no_grad():
        expected = model(image)
        gx = model.stages[0][0].act(model.stages[0][0].pwconv1(model.stages[0][0].norm(
            model.downsample_layers[0](image).permute(0, 2, 3, 1))))
    assert torch.linalg.vector_norm(gx, dim=(1, 2)).max() > 65504  # the test's premise: float16 would overflow
    for g, e in zip(got, expected, strict=True):
        assert np.isfinite(g).all()
        np.testing.assert_allclose(g.astype(np.float32), e.numpy(), rtol=0, atol=0.05)


CONFIG_ARCH = dict(depths=(1, 1, 1, 1), channels=(8, 16, 24, 32))  # the arch of tests/configs/tiny_{det,seg}_v2.py
FAST = ['train_dataloader.num_workers=0', 'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0']


def test_v2_detector_trains_from_an_fcmae_file_through_mmdets_train_tool(tmp_path):
    """The V2 Mask R-CNN recipe, shrunk, trains and evaluates through mmdet's own tools/train.py from an FCMAE file
    (ours is a thin layer over the same Runner, run on the V1 configs elsewhere)."""
    write_coco_demo(str(tmp_path / 'data'), num_train=4, num_val=2, seed=0, size=64)
    source = randomize(ConvNeXt(CONFIG_ARCH, use_grn=True, layer_scale_init_value=0.0))
    weights = fcmae_file(source, tmp_path / 'convnextv2_tiny_fcmae.pt')
    env = dict(os.environ, COCO_ROOT=f'{tmp_path / "data"}/', CONVNEXT_PRETRAINED=weights)
    log = run_tool(str(stock_tool('mmdet', 'train.py')), 'tests/configs/tiny_det_v2.py',
                   '--work-dir', str(tmp_path / 'work'), '--cfg-options', *FAST, env=env)
    assert 'fcmae layout' in log and 'pre-training decoder), skipped (7)' in log
    assert re.search(r'Epoch\(train\) \[1\]\[2/2\].*loss: ', log) and re.search(r'coco/segm_mAP: ', log)


def test_v2_segmentor_trains_from_an_official_v2_file_through_mmsegs_train_tool(tmp_path):
    """The V2 UperNet recipe, shrunk, trains and evaluates through mmseg's own tools/train.py from an official V2
    (ImageNet fine-tuned) file, whose GRN tensors are (1, 1, 1, C)."""
    write_ade_demo(str(tmp_path / 'data'), num_train=4, num_val=2, seed=0, size=64)
    source = randomize(ConvNeXt(CONFIG_ARCH, use_grn=True, layer_scale_init_value=0.0))
    official = {k: v.reshape(1, 1, 1, -1) if '.grn.' in k else v for k, v in source.state_dict().items()
                if not k.startswith('norm')}
    weights = str(tmp_path / 'convnextv2_tiny_1k_224_ema.pt')
    torch.save({'model': {**official, 'norm.weight': torch.ones(32), 'norm.bias': torch.zeros(32),
                          'head.weight': torch.zeros(10, 32), 'head.bias': torch.zeros(10)}}, weights)
    env = dict(os.environ, ADE20K_ROOT=str(tmp_path / 'data'), CONVNEXT_PRETRAINED=weights)
    log = run_tool(str(stock_tool('mmseg', 'train.py')), 'tests/configs/tiny_seg_v2.py',
                   '--work-dir', str(tmp_path / 'work'), '--cfg-options', *FAST, env=env)
    assert 'official layout' in log and 'classifier head, pre-training decoder), skipped (4)' in log
    assert re.search(r'Iter\(train\) \[2/2\].*loss: ', log) and re.search(r'mIoU: \d', log)
