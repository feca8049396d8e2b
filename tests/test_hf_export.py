"""Export to and import from Hugging Face transformers (``tools/export_hf.py``, ``checkpoint/hf_upernet.py``): the
UperNet + ConvNeXt (V1, V2) and the backbone alone, with the real transformers, logits equal to 1e-4 of their
largest value.

Import: transformers' own ``UperNetForSemanticSegmentation`` built from a config like the test configs', every
parameter and BatchNorm statistic moved off its init, saved with ``save_pretrained``, loads into our config through
mmengine's ``load_checkpoint(strict=True)`` as the folder and as its ``model.safetensors``. Export: our model
randomised, exported, read back with ``from_pretrained(output_loading_info=True)``: nothing missing, unexpected or
mismatched. No network: ``USE_HUB_KERNELS=0`` (transformers 5 asks the Hub for kernels in ``from_pretrained``).
"""
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import pytest
import torch
from mmengine.runner import load_checkpoint
from mmseg.datasets import ADE20KDataset
from torch import nn

from conftest import REPO, randomize, read_config
from convnext_dense.checkpoint.hf_upernet import upernet_from_hf
from convnext_dense.checkpoint.reader import read_checkpoint
from convnext_dense.synthetic.ade import CLASSES
from convnext_dense.tools.cli import build_model
from convnext_dense.tools.export_hf import export_hf
from convnext_dense.utils.errors import CheckpointError, ConfigError, MissingFileError

transformers = pytest.importorskip('transformers')

CONFIGS = {'v1': REPO / 'tests' / 'configs' / 'tiny_seg.py', 'v2': REPO / 'tests' / 'configs' / 'tiny_seg_v2.py'}
STAGES = ['stage1', 'stage2', 'stage3', 'stage4']
TOLERANCE = 1e-4  # of the largest logit


@pytest.fixture(scope='module', autouse=True)
def no_hub_kernels():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('USE_HUB_KERNELS', '0')
        yield


def off_init(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter random (``conftest.randomize``) and every BatchNorm's running statistics too."""
    randomize(model, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.num_batches_tracked.fill_(7)
    return model.eval()


def hf_upernet(cfg) -> nn.Module:
    """transformers' UperNet with the structure of the mmseg config ``cfg`` (a tiny ConvNeXt V1 or V2)."""
    arch = cfg.model.backbone.arch
    backbone_cls = transformers.ConvNextV2Config if cfg.model.backbone.get('use_grn') else transformers.ConvNextConfig
    backbone = backbone_cls(depths=list(arch.depths), hidden_sizes=list(arch.channels), out_features=STAGES)
    config = transformers.UperNetConfig(
        backbone_config=backbone, hidden_size=cfg.model.decode_head.channels,
        auxiliary_channels=cfg.model.auxiliary_head.channels, num_labels=cfg.model.decode_head.num_classes)
    return off_init(transformers.UperNetForSemanticSegmentation(config))


def image(seed: int = 0, shape: Tuple[int, int] = (96, 128)) -> torch.Tensor:
    return torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def our_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The segmentor's logits at the input's size (mmseg's whole-image inference before the argmax)."""
    return model.encode_decode(x, [dict(img_shape=tuple(x.shape[2:]))])


@torch.no_grad()
def hf_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(pixel_values=x).logits


def assert_close(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """The max abs difference relative to the largest logit, asserted <= TOLERANCE."""
    assert ours.shape == theirs.shape
    relative = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    assert relative <= TOLERANCE, relative
    return relative


@pytest.fixture(scope='module')
def saved(tmp_path_factory) -> Dict[str, Tuple[Path, nn.Module]]:
    """Per version: an HF UperNet off its init, saved with save_pretrained; the model."""
    out = {}
    for version, path in CONFIGS.items():
        model = hf_upernet(read_config(path))
        folder = tmp_path_factory.mktemp(f'hf_{version}')
        model.save_pretrained(folder)
        out[version] = folder, model
    return out


def export_randomised(configs: Dict[str, Path], tmp_path_factory, seed: int) -> Dict[str, Tuple[Path, nn.Module]]:
    """Per config: its model randomised (``off_init``), saved as ROOT/ours.pth and exported to ROOT/hf."""
    out = {}
    for name, path in configs.items():
        model = off_init(build_model(read_config(path)), seed=seed)
        root = tmp_path_factory.mktemp(f'ours_{name}')
        torch.save({'state_dict': model.state_dict()}, root / 'ours.pth')
        export_hf(str(path), str(root / 'ours.pth'), str(root / 'hf'))
        out[name] = root, model
    return out


@pytest.fixture(scope='module')
def exported(tmp_path_factory) -> Dict[str, Tuple[Path, nn.Module]]:
    """Per version: our tiny UperNet randomised (parameters and BN statistics), its checkpoint exported."""
    return export_randomised(CONFIGS, tmp_path_factory, seed=3)


@pytest.mark.parametrize('version', CONFIGS)
@pytest.mark.parametrize('what', ['folder', 'model.safetensors', 'ddp.pth'])
def test_hf_upernet_loads_into_our_config(saved, version, what, tmp_path):
    """A save_pretrained folder (or its weights file, or its state dict saved from a DDP wrapper) is a checkpoint
    of the config: strict, logits equal."""
    folder, hf_model = saved[version]
    path = {'folder': folder, 'model.safetensors': folder / what, 'ddp.pth': tmp_path / what}[what]
    if what == 'ddp.pth':
        torch.save({'module.' + key: value for key, value in hf_model.state_dict().items()}, path)
    ours = build_model(read_config(CONFIGS[version]))
    load_checkpoint(ours, str(path), map_location='cpu', strict=True, logger='silent')
    assert_close(our_logits(ours, image()), hf_logits(hf_model, image()))


@pytest.mark.parametrize('version', CONFIGS)
def test_export_loads_in_transformers(exported, version):
    """from_pretrained takes every key; same logits; id2label are the dataset's classes; the processor keeps the
    config's normalisation and does not resize."""
    root, ours = exported[version]
    hf_model, info = transformers.UperNetForSemanticSegmentation.from_pretrained(root / 'hf',
                                                                                 output_loading_info=True)
    assert {k: v for k, v in info.items() if v} == {}, info
    classes = CLASSES if version == 'v1' else ADE20KDataset.METAINFO['classes']  # the demo's, ADE20K's
    assert [hf_model.config.id2label[i] for i in range(len(classes))] == list(classes)
    assert assert_close(our_logits(ours, image(1)), hf_logits(hf_model.eval(), image(1))) < TOLERANCE
    processor = json.loads((root / 'hf' / 'preprocessor_config.json').read_text())
    mean = read_config(CONFIGS[version]).model.data_preprocessor.mean
    assert processor['do_resize'] is False and processor['image_mean'] == pytest.approx([m / 255 for m in mean])
    assert upernet_from_hf(hf_model.state_dict()).keys() == ours.state_dict().keys()  # the table read back


@pytest.mark.parametrize('version', CONFIGS)
def test_export_backbone(exported, version, tmp_path):
    """--part backbone: ConvNextBackbone / ConvNextV2Backbone.from_pretrained(folder) (offline), maps equal ours."""
    root, ours = exported[version]
    export_hf(str(CONFIGS[version]), str(root / 'ours.pth'), str(tmp_path), part='backbone')
    cls = transformers.ConvNextV2Backbone if version == 'v2' else transformers.ConvNextBackbone
    hf_backbone, info = cls.from_pretrained(tmp_path, output_loading_info=True)
    assert {k: v for k, v in info.items() if v} == {}, info
    with torch.no_grad():
        theirs = hf_backbone.eval()(image(2)).feature_maps
        mine = ours.backbone(image(2))
    assert len(theirs) == len(mine) == 4
    for a, b in zip(mine, theirs):
        assert_close(a, b)


def test_full_size_upernet_t_fits_the_shipped_config():
    """transformers' UperNet-T as ``openmmlab/upernet-convnext-tiny`` is configured (transformers'
    ``convert_convnext_upernet_to_pytorch.py``: ConvNeXt-T, UperNetConfig's defaults, auxiliary_in_channels 384,
    150 labels) renames onto configs/ade20k/upernet_convnext_t_512.py's model key for key, shape for shape."""
    backbone = transformers.ConvNextConfig(depths=[3, 3, 9, 3], hidden_sizes=[96, 192, 384, 768], out_features=STAGES)
    config = transformers.UperNetConfig(backbone_config=backbone, auxiliary_in_channels=384, num_labels=150)
    with torch.device('meta'):  # shapes only: no memory, no init
        hf_model = transformers.UperNetForSemanticSegmentation(config)
        ours = build_model(read_config(REPO / 'configs' / 'ade20k' / 'upernet_convnext_t_512.py'))
    renamed = {k: v.shape for k, v in upernet_from_hf(hf_model.state_dict()).items()}
    assert renamed == {k: v.shape for k, v in ours.state_dict().items()}
    assert len(renamed) == len(hf_model.state_dict())


def override(tmp_path: Path, base: Path, text: str) -> str:
    """A config file inheriting ``base`` with ``text`` added."""
    path = tmp_path / f'{base.stem}_override.py'
    path.write_text(f'_base_ = [{str(base)!r}]\n{text}\n')
    return str(path)


@pytest.mark.parametrize('config, text, message', [
    (CONFIGS['v1'], 'model = dict(backbone=dict(norm_eps=1e-5))', 'norm_eps is 1e-05; transformers\' ConvNeXt '
     'hard-codes LayerNorm eps 1e-06'),
    (CONFIGS['v1'], 'model = dict(backbone=dict(out_indices=(0, 1, 2)))', 'builds 3 of 4 stages'),
    (CONFIGS['v1'], "model = dict(auxiliary_head=dict(in_index=1))", 'auxiliary_head.in_index=1'),
    (CONFIGS['v1'], "model = dict(decode_head=dict(norm_cfg=dict(type='GN', num_groups=4)))",
     "decode_head.norm_cfg type='GN'"),
    (REPO / 'tests' / 'configs' / 'tiny_det.py', '', 'model is CascadeRCNN + CascadeRoIHead'),
    (REPO / 'tests' / 'configs' / 'tiny_rtmdet.py', '', 'model is RTMDet'),
    (REPO / 'tests' / 'configs' / 'tiny_roadmap_seg.py', '', 'model is convnext_dense.FollowBackbone'),
    (CONFIGS['v2'], 'model = dict(backbone=dict(layer_scale_init_value=1e-6))', 'GRN and layer scale'),
    (REPO / 'tests' / 'configs' / 'tiny_m2f_seg.py',
     'model = dict(decode_head=dict(pixel_decoder=dict(encoder=dict(layer_cfg=dict(\n'
     '    self_attn_cfg=dict(num_points=8))))))',
     'pixel decoder num_points is 8'),
    (REPO / 'tests' / 'configs' / 'tiny_m2f_seg.py',
     "model = dict(auxiliary_head=dict(type='FCNHead', in_channels=24, channels=16, num_classes=150))",
     'model.auxiliary_head: transformers\' Mask2Former has none; remove it (auxiliary_head=None)'),
], ids=['eps', 'cut', 'aux_in_index', 'head_norm', 'cascade', 'rtmdet', 'roadmap', 'grn_layer_scale', 'm2f_points',
        'm2f_aux'])
def test_refusals(tmp_path, config, text, message):
    """What transformers cannot express is refused in one line naming the field; other models point to ONNX."""
    with pytest.raises(ConfigError) as error:
        export_hf(override(tmp_path, config, text), None, str(tmp_path / 'out'))
    assert message in str(error.value) and '\n' not in str(error.value)
    if 'model is' in message:
        assert 'tools/export_onnx.py' in str(error.value)
    assert not (tmp_path / 'out').exists()


def test_export_tool_refuses_in_one_line(tmp_path):
    """tools/export_hf.py: a model transformers has no class for ends in one line, exit code 2, no traceback."""
    out = subprocess.run([sys.executable, 'tools/export_hf.py', str(REPO / 'tests' / 'configs' / 'tiny_det.py'),
                          'any.pth', str(tmp_path / 'out')], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and 'Traceback' not in out.stderr, out.stderr[-3000:]
    assert re.fullmatch(r'convnext_dense\.utils\.errors\.ConfigError: .*model is CascadeRCNN \+ CascadeRoIHead; .*'
                        r'tools/export_onnx\.py.*', out.stderr.strip().splitlines()[-1]), out.stderr[-3000:]


@pytest.mark.parametrize('case, message', [
    ('other_arch', "its backbone is ConvNeXt no arch in ARCH_SETTINGS (depths (2, 1, 1, 1), channels (8, 16, 24, 32)), "
                   "the model's ConvNeXt no arch in ARCH_SETTINGS (depths (1, 1, 1, 1)"),
    ('partial', 'does not fit the model of {config}: 1 missing (auxiliary_head.conv_seg.bias); 1 unexpected (extra)'),
], ids=['other_arch', 'partial'])
def test_export_refuses_a_checkpoint_that_does_not_fit_in_one_line(tmp_path, case, message):
    """A whole-model file of another arch (the line says which arch to set), or one missing or adding a tensor (a
    DDP file, ``module.`` stripped as mmengine does), is a CheckpointError of one line naming the file; nothing
    written."""
    if case == 'other_arch':
        state = build_model(read_config(override(tmp_path, CONFIGS['v1'], 'model = dict(backbone=dict(arch=dict('
                                                 'depths=(2, 1, 1, 1))))'))).state_dict()
    else:
        state = {f'module.{k}': v for k, v in build_model(read_config(CONFIGS['v1'])).state_dict().items()
                 if k != 'auxiliary_head.conv_seg.bias'}
        state['extra'] = torch.zeros(1)
    torch.save({'state_dict': state}, tmp_path / 'ours.pth')
    with pytest.raises(CheckpointError) as error:
        export_hf(str(CONFIGS['v1']), str(tmp_path / 'ours.pth'), str(tmp_path / 'out'))
    assert message.format(config=CONFIGS['v1']) in str(error.value), str(error.value)
    assert str(tmp_path / 'ours.pth') in str(error.value) and '\n' not in str(error.value)
    if case == 'other_arch':
        assert 'set model.backbone.arch' in str(error.value)
    assert not (tmp_path / 'out').exists()


def test_sharded_folder_reads_and_its_bad_files_fail_in_one_line(saved, tmp_path):
    """A save_pretrained folder in shards reads as the one file does; a shard that is not safetensors fails as a
    lone .safetensors file does (one line, no chained parser error); a shard the index names but lacks is named."""
    folder, hf_model = saved['v1']
    hf_model.save_pretrained(tmp_path / 'sharded', max_shard_size='20KB')
    shards = sorted((tmp_path / 'sharded').glob('model-*.safetensors'))
    assert len(shards) > 1 and not (tmp_path / 'sharded' / 'model.safetensors').exists()
    whole = read_checkpoint(folder / 'model.safetensors')
    read = read_checkpoint(tmp_path / 'sharded')
    assert read.keys() == whole.keys() and all(torch.equal(read[k], v) for k, v in whole.items())

    shards[0].write_bytes(b'not safetensors')
    errors = []
    for path in (tmp_path / 'sharded', shards[0]):
        with pytest.raises(CheckpointError) as error:
            read_checkpoint(path)
        assert error.value.__cause__ is None and '\n' not in str(error.value)
        errors.append(str(error.value))
    assert errors[0] == errors[1] and errors[0].startswith(f'cannot read safetensors file {str(shards[0])!r}: ')
    shards[0].unlink()
    with pytest.raises(MissingFileError, match=f'names {shards[0].name}, which is not in'):
        read_checkpoint(tmp_path / 'sharded')
