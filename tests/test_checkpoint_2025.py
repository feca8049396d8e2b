"""The ConvNeXt weights of 2025-2026 load by themselves and give their family's own maps.

Each family's file is written from one random DINOv3 state dict by renaming rules transcribed here from the family's
own code (facebookresearch/dinov3 ``dinov3/models/convnext.py``; transformers ``DINOv3ConvNextModel.save_pretrained``;
timm's ``convnext.checkpoint_filter_fn``; open_clip's ``TimmModel``), independently of
``convnext_dense.checkpoint.layouts``. The expected maps come from a functional forward of that DINOv3 state dict
(``dinov3_maps``): stage 3 is DINOv3's ``x_norm_patchtokens`` reshaped to a map, stages 0-2 its raw stages through unit
output norms, as our unit-initialised ``norm0..2`` give them.
"""
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import load_checkpoint
from safetensors.torch import save_file
from torch import Tensor, nn

from conftest import REPO, TINY, randomize
from convnext_dense import ConvNeXt, load_backbone_checkpoint
from convnext_dense.specs.arch import ARCH_SETTINGS, arch_norm_eps
from convnext_dense.tools.convert_checkpoint import convert_checkpoint

EPS = 1e-6
C = TINY['channels'][-1]
SD = Dict[str, Tensor]


def dinov3_file(seed: int = 0) -> SD:
    """A DINOv3 ConvNeXt state dict on the tiny arch: the official names, `norm` and its duplicate `norms.3`."""
    own = randomize(ConvNeXt(arch=TINY), seed).state_dict()
    sd = {k: v.clone() for k, v in own.items() if not k.startswith('norm')}
    gen = torch.Generator().manual_seed(seed + 1)
    sd['norm.weight'] = torch.rand(C, generator=gen) + 0.5
    sd['norm.bias'] = torch.randn(C, generator=gen)
    sd['norms.3.weight'], sd['norms.3.bias'] = sd['norm.weight'], sd['norm.bias']
    return sd


def _ln2d(x: Tensor, weight=None, bias=None) -> Tensor:
    return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), weight, bias, EPS).permute(0, 3, 1, 2)


def dinov3_maps(sd: SD, x: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
    """(DINOv3's dense maps: stages 0-2 through unit norms and stage 3 = x_norm_patchtokens; every stage through a
    unit norm, what a file whose final norm is not loaded gives), by DINOv3's forward, on its names."""
    raw = []
    for i in range(4):
        if i == 0:
            x = F.conv2d(x, sd['downsample_layers.0.0.weight'], sd['downsample_layers.0.0.bias'], stride=4)
            x = _ln2d(x, sd['downsample_layers.0.1.weight'], sd['downsample_layers.0.1.bias'])
        else:
            x = _ln2d(x, sd[f'downsample_layers.{i}.0.weight'], sd[f'downsample_layers.{i}.0.bias'])
            x = F.conv2d(x, sd[f'downsample_layers.{i}.1.weight'], sd[f'downsample_layers.{i}.1.bias'], stride=2)
        j = 0
        while f'stages.{i}.{j}.dwconv.weight' in sd:
            p = f'stages.{i}.{j}.'
            y = F.conv2d(x, sd[p + 'dwconv.weight'], sd[p + 'dwconv.bias'], padding=3, groups=x.shape[1])
            y = F.layer_norm(y.permute(0, 2, 3, 1), (x.shape[1],), sd[p + 'norm.weight'], sd[p + 'norm.bias'], EPS)
            y = F.linear(F.gelu(F.linear(y, sd[p + 'pwconv1.weight'], sd[p + 'pwconv1.bias'])),
                         sd[p + 'pwconv2.weight'], sd[p + 'pwconv2.bias']) * sd[p + 'gamma']
            x = x + y.permute(0, 3, 1, 2)  # (N, C, H, W)
            j += 1
        raw.append(x)
    last = raw[3]
    tokens = last.flatten(2).transpose(1, 2)  # (N, HW, C), as forward_features before its norm
    patch_tokens = F.layer_norm(tokens, (C,), sd['norm.weight'], sd['norm.bias'], EPS)  # x_norm_patchtokens
    unit = [_ln2d(t) for t in raw]
    return unit[:3] + [patch_tokens.transpose(1, 2).reshape(last.shape)], unit


def rename(sd: SD, rules: List[Tuple[str, str]]) -> SD:
    """Apply every matching rule in turn (as a chain of str.replace / re.sub in the family's converter)."""
    out = {}
    for key, tensor in sd.items():
        for pattern, replacement in rules:
            key = re.sub(pattern, replacement, key)
        out[key] = tensor
    return out


def drop(sd: SD, prefix: str) -> SD:
    return {k: v for k, v in sd.items() if not k.startswith(prefix)}


# transformers' DINOv3ConvNextModel as save_pretrained writes it
HF_DINOV3 = [(r'^downsample_layers\.(\d)\.(\d)\.', r'stages.\1.downsample_layers.\2.'),
             (r'^stages\.(\d)\.(\d+)\.dwconv\.', r'stages.\1.layers.\2.depthwise_conv.'),
             (r'^stages\.(\d)\.(\d+)\.norm\.', r'stages.\1.layers.\2.layer_norm.'),
             (r'^stages\.(\d)\.(\d+)\.pwconv(\d)\.', r'stages.\1.layers.\2.pointwise_conv\3.'),
             (r'^stages\.(\d)\.(\d+)\.gamma$', r'stages.\1.layers.\2.gamma'),
             (r'^norm\.', 'layer_norm.')]
# timm's checkpoint_filter_fn on a DINOv3 / EUPE file (after dropping `projectors.` and `norms.`)
TIMM_FILTER = [(r'downsample_layers\.0\.', 'stem.'), (r'stages\.(\d+)\.(\d+)', r'stages.\1.blocks.\2'),
               (r'downsample_layers\.(\d+)\.(\d+)', r'stages.\1.downsample.\2'), (r'dwconv', 'conv_dw'),
               (r'pwconv', 'mlp.fc'), (r'^norm\.', 'head.norm.')]


def timm_copy(sd: SD) -> SD:
    return rename(drop(drop(sd, 'projectors.'), 'norms.'), TIMM_FILTER)


def openclip_file(sd: SD) -> SD:
    """open_clip's CLIP with a timm ConvNeXt trunk: its own (pooled-feature) head.norm, the projection, the text
    tower."""
    trunk = timm_copy(sd)
    trunk['head.norm.weight'] = torch.rand(C) + 2  # CLIP's own: loading it as norm3 would change stage 3
    gen = torch.Generator().manual_seed(7)
    text = {'token_embedding.weight': torch.randn(50, 16, generator=gen), 'positional_embedding': torch.randn(8, 16),
            'ln_final.weight': torch.ones(16), 'ln_final.bias': torch.zeros(16),
            'text_projection': torch.randn(16, 16), 'logit_scale': torch.tensor(4.6)}
    for b in range(2):
        for name, shape in (('attn.in_proj_weight', (48, 16)), ('attn.out_proj.weight', (16, 16)),
                            ('ln_1.weight', (16,)), ('mlp.c_fc.weight', (64, 16)), ('mlp.c_proj.weight', (16, 64))):
            text[f'transformer.resblocks.{b}.{name}'] = torch.randn(shape, generator=gen)
    return {**{f'visual.trunk.{k}': v for k, v in trunk.items()}, 'visual.head.proj.weight': torch.randn(16, C),
            **text}


# family -> (file name, builder from the DINOv3 state dict, detected layout, whether stage 3 is DINOv3's normed one)
FAMILIES = {
    'dinov3': ('dinov3_convnext_tiny_pretrain_lvd1689m-21b726bb.pth', dict, 'dinov3', True),
    'eupe': ('EUPE-ConvNeXt-T.pt', lambda sd: {**sd, 'projectors.0.weight': torch.randn(64, C),
                                                'projectors.0.bias': torch.randn(64)}, 'eupe', True),
    'hf_dinov3': ('model.safetensors', lambda sd: rename(drop(sd, 'norms.'), HF_DINOV3), 'hf_dinov3', True),
    'timm_dinov3': ('timm_dinov3.safetensors', timm_copy, 'timm_dinov3', True),
    'openclip': ('open_clip_model.safetensors', openclip_file, 'openclip', False),
}


def save(obj: SD, path: Path) -> Path:
    if path.suffix == '.safetensors':
        save_file({k: v.contiguous() for k, v in obj.items()}, str(path))
    else:
        torch.save(obj, path)
    return path


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny maps: on a busy machine, a second thread costs more than the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def source() -> SD:
    return dinov3_file()


@pytest.fixture(scope='module')
def image() -> Tensor:
    return torch.randn(1, 3, 64, 64)


def assert_maps(model: nn.Module, x: Tensor, want: List[Tensor]) -> None:
    with torch.no_grad():
        got = model.eval()(x)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


class Detector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = ConvNeXt(arch=TINY)


@pytest.mark.parametrize('family', list(FAMILIES))
def test_family_loads_by_itself_to_its_own_maps(family, source, image, tmp_path):
    name, build, layout, dense_norm = FAMILIES[family]
    path = save(build(source), tmp_path / name)
    dense, unit = dinov3_maps(source, image)
    want = dense if dense_norm else unit

    direct = ConvNeXt(arch=TINY)
    report = load_backbone_checkpoint(direct, path)
    assert_maps(direct, image, want)
    assert report.layout == layout and not report.missing and not report.unexpected and not report.not_built
    assert report.norms == {'norm0': 'init', 'norm1': 'init', 'norm2': 'init',
                            'norm3': 'file' if dense_norm else 'init'}
    via_init_cfg = ConvNeXt(arch=TINY, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    via_init_cfg.init_weights()
    assert_maps(via_init_cfg, image, want)

    clean = tmp_path / 'clean.safetensors'
    assert convert_checkpoint(path, clean).layout == layout
    reloaded = ConvNeXt(arch=TINY)
    assert load_backbone_checkpoint(reloaded, clean).layout == 'official'
    assert_maps(reloaded, image, want)
    whole = tmp_path / 'whole.pth'
    convert_checkpoint(path, whole, whole_model=True)
    detector = Detector()
    load_checkpoint(detector, str(whole))  # what a config's load_from runs; norm0..2 are not in the file
    assert_maps(detector.backbone, image, want)


def test_dinov3_final_norm_matters_and_its_source_is_reported(source, image, tmp_path):
    """The test above could fail: DINOv3's stage 3 is far from the unit-normed one; the report names norm3's origin."""
    dense, unit = dinov3_maps(source, image)
    assert (dense[3] - unit[3]).abs().max() > 0.1
    report = load_backbone_checkpoint(ConvNeXt(arch=TINY), save(source, tmp_path / 'd.pth'))
    assert 'output norms from the file: norm3; kept at init (weight 1, bias 0): norm0, norm1, norm2' in report.summary()
    assert not report.classifier  # `norms.3` is `norm` again, not an unexpected key
    timm_classifier = {**timm_copy(source), 'head.fc.weight': torch.randn(10, C), 'head.fc.bias': torch.randn(10)}
    report = load_backbone_checkpoint(ConvNeXt(arch=TINY), save(timm_classifier, tmp_path / 'cls.pth'))
    assert report.layout == 'timm' and report.norms['norm3'] == 'init'  # with head.fc, head.norm is the pooled one


def test_openclip_report_counts_what_is_not_backbone(source, tmp_path):
    path = save(openclip_file(source), tmp_path / 'open_clip_pytorch_model.bin')
    report = load_backbone_checkpoint(ConvNeXt(arch=TINY), path)
    assert report.prefix == 'visual.trunk.' and report.outside == 0
    assert report.classifier_parts == {'visual.trunk.head': 2, 'visual.head': 1, 'token_embedding': 1,
                                       'positional_embedding': 1, 'ln_final': 2, 'text_projection': 1,
                                       'logit_scale': 1, 'transformer': 10}
    text = report.summary()
    assert 'pre-training decoder), skipped (19): visual.head.* (1), token_embedding.* (1)' in text
    assert 'transformer.* (10), visual.trunk.head.* (2)' in text and 'resblocks' not in text  # counted, not listed
    eupe = {**source, 'projectors.0.weight': torch.randn(4, C)}
    report = load_backbone_checkpoint(ConvNeXt(arch=TINY), save(eupe, tmp_path / 'e.pt'))
    assert report.classifier_parts == {'projectors': 1}


def test_two_towers_or_two_layouts_are_one_error_naming_both(source, tmp_path):
    both = save({**source, **openclip_file(dinov3_file(seed=3))}, tmp_path / 'two.pth')
    with pytest.raises(ValueError, match=r"two\.pth' holds 2 ConvNeXt towers, stems 'downsample_layers\.0\.0\.weight' "
                                         r"\(official layout\) and 'visual\.trunk\.stem\.0\.weight' \(timm layout\)"):
        load_backbone_checkpoint(ConvNeXt(arch=TINY), both)
    mixed = save({**source, **timm_copy(dinov3_file(seed=4))}, tmp_path / 'mixed.pth')
    with pytest.raises(ValueError, match=r"'stem\.0\.weight' \(timm layout\)"):
        load_backbone_checkpoint(ConvNeXt(arch=TINY), mixed)
    report = load_backbone_checkpoint(ConvNeXt(arch=TINY), both, prefix='visual.trunk.')  # a prefix picks one
    assert report.layout == 'openclip' and not report.unexpected


def test_convert_cli_reads_an_openclip_file(source, image, tmp_path):
    src = save(openclip_file(source), tmp_path / 'open_clip_model.safetensors')
    done = subprocess.run([sys.executable, str(REPO / 'tools' / 'convert_checkpoint.py'), str(src),
                           str(tmp_path / 'trunk.pth')], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert done.returncode == 0, done.stderr
    assert "openclip layout, prefix 'visual.trunk.'" in done.stdout and 'transformer.* (10)' in done.stdout
    model = ConvNeXt(arch=TINY)
    load_backbone_checkpoint(model, tmp_path / 'trunk.pth')
    assert_maps(model, image, dinov3_maps(source, image)[1])


def test_xxlarge_and_its_layer_norm_eps():
    assert ARCH_SETTINGS['xxlarge']['depths'] == (3, 4, 30, 3)
    assert ARCH_SETTINGS['xxlarge']['channels'] == (384, 768, 1536, 3072)
    assert arch_norm_eps('xxlarge') == 1e-5 and arch_norm_eps('large') == 1e-6 == arch_norm_eps(TINY)
    stem_only = ConvNeXt('xxlarge', out_indices=(0,))  # stage 0 only: a few MB
    eps = {m.eps for m in stem_only.modules() if isinstance(m, nn.LayerNorm)}
    assert eps == {1e-5} and stem_only.output_shape().channels == (384,)
    custom = ConvNeXt(arch={**TINY, 'norm_eps': 1e-3}, norm_eps=1e-4)  # the argument overrides the arch's
    assert {m.eps for m in custom.modules() if isinstance(m, nn.LayerNorm)} == {1e-4}
    with pytest.raises(ValueError, match='norm_eps=0 must be > 0'):
        ConvNeXt(arch=TINY, norm_eps=0)
