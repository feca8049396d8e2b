"""Checkpoint loading: every layout gives the source's feature maps; errors; safety; mmengine runner; the CLI.

Each layout's file is written from a tiny backbone with random weights, renamed by rules written here from each
library's published key names (independently of ``convnext_dense.checkpoint.layouts``), so a wrong layout record
fails a test.
"""
import copy
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
from safetensors.torch import save_file
from torch import Tensor, nn

from conftest import REPO, TINY, randomize
from convnext_dense import ConvNeXt
from convnext_dense.checkpoint import OFFICIAL_CHECKPOINTS, OFFICIAL_URL, load_backbone_checkpoint, read_checkpoint
from convnext_dense.checkpoint.loading import map_whole_model
from convnext_dense.engine.checkpoint_loader import (
    install_safe_checkpoint_loader,
    load_from_local_safe,
    uninstall_safe_checkpoint_loader,
)
from convnext_dense.tools.convert_checkpoint import convert_checkpoint

LAST = TINY['channels'][-1]  # channels of the last stage: the classifier's input
V1 = dict(arch=TINY)
V2 = dict(arch=TINY, use_grn=True, layer_scale_init_value=0.0)
NORMS = tuple(f'norm{i}' for i in range(4))

@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """The maps here are tiny: on a busy machine, handing them to a second thread costs 100x the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Renaming rules from our (= official) names, first match wins, per the reference table.
TIMM = [(r'^downsample_layers\.0\.', 'stem.'),
        (r'^downsample_layers\.(\d)\.', r'stages.\1.downsample.'),
        (r'^stages\.(\d)\.(\d+)\.dwconv\.', r'stages.\1.blocks.\2.conv_dw.'),
        (r'^stages\.(\d)\.(\d+)\.pwconv(\d)\.', r'stages.\1.blocks.\2.mlp.fc\3.'),
        (r'^stages\.(\d)\.(\d+)\.grn\.gamma$', r'stages.\1.blocks.\2.mlp.grn.weight'),
        (r'^stages\.(\d)\.(\d+)\.grn\.beta$', r'stages.\1.blocks.\2.mlp.grn.bias'),
        (r'^stages\.(\d)\.(\d+)\.', r'stages.\1.blocks.\2.')]
HF = [(r'^downsample_layers\.0\.0\.', 'embeddings.patch_embeddings.'),
      (r'^downsample_layers\.0\.1\.', 'embeddings.layernorm.'),
      (r'^downsample_layers\.(\d)\.', r'encoder.stages.\1.downsampling_layer.'),
      (r'^stages\.(\d)\.(\d+)\.norm\.', r'encoder.stages.\1.layers.\2.layernorm.'),
      (r'^stages\.(\d)\.(\d+)\.gamma$', r'encoder.stages.\1.layers.\2.layer_scale_parameter'),
      (r'^stages\.(\d)\.(\d+)\.grn\.gamma$', r'encoder.stages.\1.layers.\2.grn.weight'),
      (r'^stages\.(\d)\.(\d+)\.grn\.beta$', r'encoder.stages.\1.layers.\2.grn.bias'),
      (r'^stages\.(\d)\.(\d+)\.', r'encoder.stages.\1.layers.\2.')]
MMPRETRAIN = [(r'\.dwconv\.', '.depthwise_conv.'), (r'\.pwconv(\d)\.', r'.pointwise_conv\1.')]


def rename(state_dict: Dict[str, Tensor], rules: List[Tuple[str, str]], prefix: str = '') -> Dict[str, Tensor]:
    renamed = {}
    for key, tensor in state_dict.items():
        for pattern, replacement in rules:
            new, hits = re.subn(pattern, replacement, key)
            if hits:
                key = new
                break
        renamed[prefix + key] = tensor
    return renamed


def source(kind: dict, seed: int = 0) -> ConvNeXt:
    return randomize(ConvNeXt(**kind), seed).eval()


def backbone_sd(model: ConvNeXt, with_norms: bool) -> Dict[str, Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if with_norms or k.split('.')[0] not in NORMS}


def classifier(c: int, names: Tuple[str, str]) -> Dict[str, Tensor]:
    """A final LayerNorm and a 10-class head, random: loading either would change the feature maps."""
    norm, head = names
    return {f'{norm}.weight': torch.rand(c) + 2, f'{norm}.bias': torch.rand(c), f'{head}.weight': torch.rand(10, c),
            f'{head}.bias': torch.rand(10)}


def grn_4d(state_dict: Dict[str, Tensor], marker: str) -> Dict[str, Tensor]:
    """Official and HF V2 files store GRN parameters as (1, 1, 1, C)."""
    return {k: v.reshape(1, 1, 1, -1) if marker in k else v for k, v in state_dict.items()}


# Each case: the source kind, the file name, a builder (source model -> object to save), the prefix to pass, the
# detected layout, and the output norms the file carries (the rest must keep their init).
Builder = Callable[[ConvNeXt], dict]
CASES: Dict[str, Tuple[dict, str, Builder, Optional[str], str, Tuple[str, ...]]] = {
    'official_v1': (V1, 'convnext.pth', lambda m: {'model': {**backbone_sd(m, False),
                                                              **classifier(LAST, ('norm', 'head'))}},
                    None, 'official', ()),
    'official_v1_ema_only': (V1, 'ema.pth', lambda m: {'model_ema': backbone_sd(m, False)}, None, 'official', ()),
    'official_v2_grn_1x1x1xC': (V2, 'convnextv2.pt', lambda m: {'model': {
        **grn_4d(backbone_sd(m, False), '.grn.'), **classifier(LAST, ('norm', 'head'))}}, None, 'official', ()),
    'official_dense_whole_model': (V1, 'cascade_mask_rcnn.pth', lambda m: {
        'meta': {'mmdet_version': '2.25.0'},
        'state_dict': {**{f'backbone.{k}': v for k, v in backbone_sd(m, True).items()},
                       'neck.lateral_convs.0.conv.weight': torch.rand(8, 8, 1, 1),
                       'roi_head.bbox_head.0.fc_cls.weight': torch.rand(81, 8)}}, 'backbone.', 'official', NORMS),
    'mmpretrain': (V1, 'mmpretrain.pth', lambda m: {
        'meta': {'dataset_meta': {'classes': ('a', 'b')}},
        'state_dict': {**rename(backbone_sd(m, False), MMPRETRAIN, 'backbone.'),
                       'backbone.norm3.weight': m.norm3.weight.detach().clone(),
                       'backbone.norm3.bias': m.norm3.bias.detach().clone(),
                       'head.fc.weight': torch.rand(10, LAST), 'head.fc.bias': torch.rand(10)}},
                   None, 'mmpretrain', ('norm3',)),
    'mmpretrain_v2': (V2, 'mmpretrain_v2.pth', lambda m: {'state_dict': rename(backbone_sd(m, True), MMPRETRAIN,
                                                                              'backbone.')},
                      'backbone', 'mmpretrain', NORMS),
    'timm_pth': (V1, 'timm.pth', lambda m: {**rename(backbone_sd(m, False), TIMM),
                                            **classifier(LAST, ('head.norm', 'head.fc'))}, None, 'timm', ()),
    'timm_v2_bin': (V2, 'pytorch_model.bin', lambda m: rename(backbone_sd(m, False), TIMM), None, 'timm', ()),
    'timm_safetensors': (V1, 'model.safetensors', lambda m: {**rename(backbone_sd(m, False), TIMM),
                                                             **classifier(LAST, ('head.norm', 'head.fc'))},
                         None, 'timm', ()),
    'timm_conv_mlp_4d': (V1, 'timm_atto.pth', lambda m: {
        k: v[:, :, None, None] if re.search(r'mlp\.fc\d\.weight$', k) else v
        for k, v in rename(backbone_sd(m, False), TIMM).items()}, None, 'timm', ()),
    'timm_features_only': (V1, 'timm_features.pth', lambda m: {
        re.sub(r'^(stem|stages)\.(\d)\.', r'\1_\2.', k): v
        for k, v in rename(backbone_sd(m, False), TIMM).items()}, None, 'timm', ()),
    'hf_convnext': (V1, 'hf.bin', lambda m: {**rename(backbone_sd(m, False), HF, 'convnext.'),
                                             **classifier(LAST, ('convnext.layernorm', 'classifier'))},
                    None, 'hf', ()),
    'hf_convnextv2_safetensors': (V2, 'hf_v2.safetensors', lambda m: {
        **grn_4d(rename(backbone_sd(m, False), HF, 'convnextv2.'), '.grn.'),
        **classifier(LAST, ('convnextv2.layernorm', 'classifier'))}, None, 'hf', ()),
    'hf_bare_model': (V1, 'hf_bare.bin', lambda m: {**rename(backbone_sd(m, False), HF),
                                                    'layernorm.weight': torch.rand(LAST) + 2,
                                                    'layernorm.bias': torch.rand(LAST)}, None, 'hf', ()),
    'ddp_official': (V1, 'ddp.pth', lambda m: {'model': {f'module.{k}': v for k, v in backbone_sd(m, False).items()}},
                     None, 'official', ()),
    'compiled_timm': (V2, 'compiled.pth', lambda m: {f'_orig_mod.{k}': v
                                                     for k, v in rename(backbone_sd(m, False), TIMM).items()},
                      None, 'timm', ()),
    'ddp_compiled_mmpretrain': (V1, 'ddp_mm.pth', lambda m: {'state_dict': {
        f'module._orig_mod.{k}': v for k, v in rename(backbone_sd(m, True), MMPRETRAIN, 'backbone.').items()}},
                                'backbone.', 'mmpretrain', NORMS),
}


def save(obj: dict, path: Path) -> Path:
    if path.suffix == '.safetensors':
        save_file({k: v.contiguous() for k, v in obj.items()}, str(path))
    else:
        torch.save(obj, path)
    return path


def expected_features(model: ConvNeXt, x: Tensor, norms_in_file: Tuple[str, ...] = ()) -> Tuple[Tensor, ...]:
    """The source's feature maps with the output norms the file lacks at their init (weight 1, bias 0)."""
    reference = copy.deepcopy(model)
    for i in reference.out_indices:
        if f'norm{i}' not in norms_in_file:
            nn.init.ones_(getattr(reference, f'norm{i}').weight)
            nn.init.zeros_(getattr(reference, f'norm{i}').bias)
    with torch.no_grad():
        return reference(x)


def assert_same_features(a: Tuple[Tensor, ...], b: Tuple[Tensor, ...]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-5)


@pytest.mark.parametrize('case', list(CASES))
def test_every_layout_loads_to_the_source_features(case, tmp_path):
    kind, name, build, prefix, layout, norms_in_file = CASES[case]
    model = source(kind, seed=len(case))
    path = save(build(model), tmp_path / name)
    x = torch.randn(1, 3, 32, 32)
    want = expected_features(model, x, norms_in_file)

    direct = ConvNeXt(**kind).eval()
    report = load_backbone_checkpoint(direct, path, prefix=prefix)
    via_init_cfg = ConvNeXt(**kind, init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix=prefix)).eval()
    via_init_cfg.init_weights()
    with torch.no_grad():
        assert_same_features(direct(x), want)
        assert_same_features(via_init_cfg(x), want)
    assert report.layout == layout
    assert report.norms == {n: 'file' if n in norms_in_file else 'init' for n in NORMS}
    assert not report.missing and not report.unexpected and not report.not_built
    assert len(report.loaded) == report.expected - 2 * (4 - len(norms_in_file))
    assert all(k.split('.')[-2] in ('norm', 'head', 'fc', 'layernorm', 'classifier') for k in report.classifier)


def test_report_is_logged_and_names_skipped_classifier_and_kept_norms(tmp_path, caplog):
    model = source(V1)
    path = save({'model': {**backbone_sd(model, False), **classifier(LAST, ('norm', 'head'))}}, tmp_path / 'c.pth')
    report = load_backbone_checkpoint(ConvNeXt(**V1), path)
    assert sorted(report.classifier) == ['head.bias', 'head.weight', 'norm.bias', 'norm.weight']
    assert report.container == 'model' and report.prefix == ''
    text = report.summary()
    assert f'{report.expected - 8}/{report.expected}' in text and 'official layout' in text
    assert 'pre-training decoder), skipped (4)' in text
    assert 'kept at init (weight 1, bias 0): norm0, norm1, norm2, norm3' in text


def test_unbuilt_stages_and_norms_are_reported_not_fatal(tmp_path):
    model = source(V1)
    path = save({'state_dict': {f'backbone.{k}': v for k, v in backbone_sd(model, True).items()}}, tmp_path / 'd.pth')
    partial = ConvNeXt(**V1, out_indices=(1, 2)).eval()
    report = load_backbone_checkpoint(partial, path)
    assert report.norms == {'norm1': 'file', 'norm2': 'file'} and not report.missing
    assert {'norm0.weight', 'norm3.bias', 'stages.3.0.dwconv.weight', 'downsample_layers.3.1.weight'} <= set(
        report.not_built)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert_same_features(partial(x), model(x)[1:3])


def test_missing_tensors_are_reported(tmp_path):
    state_dict = backbone_sd(source(V1), False)
    del state_dict['stages.2.1.pwconv1.weight']
    report = load_backbone_checkpoint(ConvNeXt(**V1), save({'model': state_dict}, tmp_path / 'm.pth'))
    assert report.missing == ['stages.2.1.pwconv1.weight']
    assert 'missing, kept init (1): stages.2.1.pwconv1.weight' in report.summary()


def test_prefixes(tmp_path):
    model = source(V1)
    whole = {'state_dict': {**{f'backbone.{k}': v for k, v in backbone_sd(model, True).items()},
                            'neck.conv.weight': torch.rand(4, 4)}}
    path = save(whole, tmp_path / 'whole.pth')
    for prefix in ('backbone.', 'backbone', None):
        report = load_backbone_checkpoint(ConvNeXt(**V1), path, prefix=prefix)
        assert report.prefix == 'backbone.' and report.outside == 1 and report.norms['norm0'] == 'file'
    with pytest.raises(ValueError, match=r"prefix 'encoder\.' matches no key .*backbone\., neck\."):
        load_backbone_checkpoint(ConvNeXt(**V1), path, prefix='encoder.')
    with pytest.raises(ValueError, match='no ConvNeXt backbone tensor'):  # '' = no prefix: backbone.* is not ours
        load_backbone_checkpoint(ConvNeXt(**V1), path, prefix='')


def test_shape_mismatch_names_key_shapes_and_likely_arch(tmp_path):
    path = save({'model': ConvNeXt('atto').state_dict()}, tmp_path / 'atto.pth')
    with pytest.raises(ValueError) as error:
        load_backbone_checkpoint(ConvNeXt(**V1), path)
    message = str(error.value)
    assert 'downsample_layers.0.0.weight' in message and '(40, 3, 4, 4)' in message and '(8, 3, 4, 4)' in message
    assert "'atto' (depths (2, 2, 6, 2)" in message and str(path) in message


def test_zero_backbone_tensors_is_an_error(tmp_path):
    path = save({'conv1.weight': torch.rand(8, 3, 7, 7), 'fc.weight': torch.rand(10, 8)}, tmp_path / 'resnet.pth')
    with pytest.raises(ValueError, match=r"no ConvNeXt backbone tensor of '.*resnet\.pth'.*conv1\.weight"):
        load_backbone_checkpoint(ConvNeXt(**V1), path)


def test_missing_file_errors_name_the_path_and_official_download(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        load_backbone_checkpoint(ConvNeXt(**V1), tmp_path / 'nothing.pth')
    official = tmp_path / 'pretrained' / 'convnext_tiny_1k_224.pth'
    with pytest.raises(FileNotFoundError, match=re.escape(OFFICIAL_URL + 'convnext_tiny_1k_224.pth')):
        ConvNeXt(**V1, init_cfg=dict(type='Pretrained', checkpoint=str(official))).init_weights()
    with pytest.raises(ValueError, match="'s3://bucket/convnext_tiny_1k_224.pth' is a URL of a scheme"):
        read_checkpoint('s3://bucket/convnext_tiny_1k_224.pth')  # http(s) URLs: tests/test_download.py


def test_every_official_file_the_configs_name_has_a_download_url():
    named = {m for config in (REPO / 'configs').rglob('*.py')
             for m in re.findall(r'convnext_\w+_1k_224\.pth|convnext_\w+_22k_224\.pth', config.read_text())}
    assert named and named <= set(OFFICIAL_CHECKPOINTS), named - set(OFFICIAL_CHECKPOINTS)


@pytest.mark.parametrize('fmt', ['zip', 'legacy', 'safetensors', 'empty'])
def test_truncated_or_empty_file_is_an_error_with_the_path(fmt, tmp_path):
    state_dict = backbone_sd(source(V1), True)
    path = tmp_path / ('t.safetensors' if fmt == 'safetensors' else 't.pth')
    if fmt == 'safetensors':
        save_file(state_dict, str(path))
    else:
        torch.save(state_dict, path, _use_new_zipfile_serialization=fmt == 'zip')
    data = path.read_bytes()
    path.write_bytes(b'' if fmt == 'empty' else data[:len(data) // 2])
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_backbone_checkpoint(ConvNeXt(**V1), path)


class CreatesFile:
    """Unpickling this calls ``open(marker, 'w')``: a stand-in for any code a crafted checkpoint could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), 'w')


def malicious(path: Path, marker: Path, raw_pickle: bool) -> Path:
    """A torch.save zip file with real weights, or a plain pickle (the legacy, pre-zip format) without tensors."""
    if raw_pickle:
        path.write_bytes(pickle.dumps({'state_dict': {}, 'meta': CreatesFile(marker)}, protocol=2))
    else:
        torch.save({'state_dict': backbone_sd(source(V1), True), 'meta': CreatesFile(marker)}, path)
    return path


@pytest.mark.parametrize('raw_pickle', [False, True])
def test_malicious_pickle_is_refused_and_never_runs(raw_pickle, tmp_path):
    marker = tmp_path / 'pwned'
    path = malicious(tmp_path / 'evil.pth', marker, raw_pickle)
    refused = r"refusing to read '.*evil\.pth': it holds more than weights \(unpickling it would call io\.open\)"
    with pytest.raises(ValueError, match=refused):
        load_backbone_checkpoint(ConvNeXt(**V1), path)
    with pytest.raises(ValueError, match='refusing to read'):
        ConvNeXt(**V1, init_cfg=dict(type='Pretrained', checkpoint=str(path))).init_weights()
    with pytest.raises(ValueError, match='refusing to read'):
        CheckpointLoader.load_checkpoint(str(path))
    with pytest.raises(ValueError, match='refusing to read'):
        load_checkpoint(nn.Linear(1, 1), str(path))  # mmengine's runner / tools path
    assert not marker.exists()
    control = malicious(tmp_path / 'control.pth', tmp_path / 'control', raw_pickle)
    if raw_pickle:  # the file really is malicious: an unrestricted unpickler runs its code
        pickle.loads(control.read_bytes())
    else:
        torch.load(control, weights_only=False)
    assert (tmp_path / 'control').exists()


class Classifier(BaseModel):
    """A runner-trainable model around the backbone, enough for mmengine to write a real checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ConvNeXt(**V1, out_indices=(3,))
        self.head = nn.Linear(LAST, 2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.head(self.backbone(torch.stack(inputs))[0].mean((2, 3)))
        if mode == 'loss':
            return dict(loss=nn.functional.cross_entropy(logits, torch.stack(labels)))
        return logits


class Images(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.randn(3, 32, 32), labels=torch.tensor(index % 2))


def runner(work_dir: Path, max_epochs: int, **kwargs) -> Runner:
    return Runner(model=Classifier(), work_dir=str(work_dir), train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
                  train_dataloader=dict(dataset=Images(), sampler=dict(type='DefaultSampler', shuffle=True),
                                        batch_size=2, num_workers=0),
                  optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
                  param_scheduler=dict(type='MultiStepLR', milestones=[1]), randomness=dict(seed=0),
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1), logger=None),
                  **kwargs)


def test_mmengine_runner_checkpoint_resumes_through_the_safe_loader(tmp_path):
    first = runner(tmp_path, max_epochs=1)
    first.train()
    path = tmp_path / 'epoch_1.pth'
    assert CheckpointLoader._get_checkpoint_loader(str(path)) is load_from_local_safe
    loss = read_checkpoint(path)['message_hub']['log_scalars']['train/loss']  # a HistoryBuffer, allow-listed
    assert len(loss.data[0]) == 2 and np.isfinite(loss.statistics('mean'))

    resumed = runner(tmp_path, max_epochs=2, load_from=str(path), resume=True)
    resumed.train()  # torch >= 2.6 with mmengine's own loader fails here on the saved message hub
    assert resumed.epoch == 2 and resumed.iter == 4
    assert len(resumed.message_hub.get_scalar('train/loss').data[0]) == 4  # 2 resumed from the file + 2 new

    report = load_backbone_checkpoint(ConvNeXt(**V1, out_indices=(3,)), path)
    assert report.layout == 'official' and report.prefix == 'backbone.' and not report.missing
    assert report.norms == {'norm3': 'file'}


def test_uninstalling_the_safe_loader_restores_mmengine_s_own(tmp_path):
    """What ``import convnext_dense`` installs can be removed; mmengine's own loader then refuses the runner checkpoint
    that the installed (default) loader reads."""
    runner(tmp_path, max_epochs=1).train()
    path = str(tmp_path / 'epoch_1.pth')
    assert CheckpointLoader._get_checkpoint_loader(path) is load_from_local_safe  # the default, after import
    uninstall_safe_checkpoint_loader()
    try:
        assert CheckpointLoader._get_checkpoint_loader(path) is load_from_local
        with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):  # torch >= 2.6: weights_only=True
            CheckpointLoader.load_checkpoint(path, map_location='cpu')
    finally:
        install_safe_checkpoint_loader()
    assert CheckpointLoader._get_checkpoint_loader(path) is load_from_local_safe
    assert 'message_hub' in CheckpointLoader.load_checkpoint(path, map_location='cpu')


def test_numpy1_pickled_globals_are_allowed(tmp_path):
    """Most runner checkpoints in the wild were pickled under numpy 1 (``numpy.core``, not ``numpy._core``)."""
    path = tmp_path / 'np1.pth'
    torch.save({'eta': np.float64(1.5), 'history': np.arange(3)}, path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes().replace(b'numpy._core.multiarray', b'numpy.core.multiarray'))
    assert b'numpy.core.multiarray\n_reconstruct' in path.read_bytes()
    loaded = read_checkpoint(path)
    assert loaded['eta'] == 1.5 and loaded['history'].tolist() == [0, 1, 2]


class Detector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = ConvNeXt(**V1).eval()
        self.neck = nn.Conv2d(LAST, 4, 1)


def test_whole_model_checkpoint_through_mmengine_maps_backbone_keys_only(tmp_path):
    model = source(V1)
    neck = {'neck.weight': torch.rand(4, LAST, 1, 1), 'neck.bias': torch.rand(4)}
    path = save({'meta': {'epoch': 12}, 'state_dict': {**rename(backbone_sd(model, True), MMPRETRAIN, 'backbone.'),
                                                       **neck}}, tmp_path / 'mmdet3_convnext.pth')
    detector = Detector()
    load_checkpoint(detector, str(path), strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert_same_features(detector.backbone(x), model(x))
    assert torch.equal(detector.neck.weight, neck['neck.weight'])

    resnet = {'backbone.stem.0.weight': torch.rand(8, 3, 3, 3), 'backbone.layer1.0.conv1.weight': torch.rand(8, 8)}
    assert map_whole_model(resnet) == (resnet, None)  # a backbone of another family is left alone


def test_convert_library_writes_safetensors_and_refuses_the_source(tmp_path):
    model = source(V2)
    src = save({'model': grn_4d(backbone_sd(model, False), '.grn.')}, tmp_path / 'v2.pth')
    dst = tmp_path / 'clean.safetensors'
    report = convert_checkpoint(src, dst)
    assert report.layout == 'official' and not report.missing
    fresh = ConvNeXt(**V2).eval()
    assert load_backbone_checkpoint(fresh, dst).layout == 'official'
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert_same_features(fresh(x), expected_features(model, x))
    with pytest.raises(ValueError, match='refusing to overwrite the source'):
        convert_checkpoint(src, Path(os.path.relpath(src)))

    dense = save({'state_dict': {**{f'backbone.{k}': v for k, v in backbone_sd(model, True).items()},
                                 'decode_head.conv_seg.weight': torch.rand(3, 8, 1, 1)}}, tmp_path / 'upernet.pth')
    convert_checkpoint(dense, tmp_path / 'whole.pth', whole_model=True)
    whole = torch.load(tmp_path / 'whole.pth', weights_only=True)['state_dict']
    assert set(whole) == {f'backbone.{k}' for k in backbone_sd(model, True)} | {'decode_head.conv_seg.weight'}
    assert whole['backbone.stages.0.0.grn.gamma'].shape == (32,)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / 'tools' / 'convert_checkpoint.py'), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, 'OMP_NUM_THREADS': '1'})


def test_convert_cli_backbone_and_whole_model(tmp_path):
    model = source(V1)
    src = save({**rename(backbone_sd(model, False), TIMM), **classifier(LAST, ('head.norm', 'head.fc'))},
               tmp_path / 'timm.pth')
    done = run_cli(str(src), str(tmp_path / 'clean.pth'))
    assert done.returncode == 0, done.stderr
    assert 'timm layout' in done.stdout and 'pre-training decoder), skipped (4)' in done.stdout
    clean = torch.load(tmp_path / 'clean.pth', weights_only=True)
    assert clean.keys() == backbone_sd(model, False).keys()
    assert all(torch.equal(clean[k], v) for k, v in backbone_sd(model, False).items())

    done = run_cli(str(src), str(tmp_path / 'whole.pth'), '--whole-model')
    assert done.returncode == 0, done.stderr
    whole = torch.load(tmp_path / 'whole.pth', weights_only=True)
    assert whole['meta']['layout'] == 'timm'
    assert set(whole['state_dict']) == {f'backbone.{k}' for k in backbone_sd(model, False)}
    detector = Detector()
    load_checkpoint(detector, str(tmp_path / 'whole.pth'))
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert_same_features(detector.backbone(x), expected_features(model, x))

    before = src.read_bytes()
    done = run_cli(str(src), str(src))
    assert done.returncode != 0 and 'refusing to overwrite the source' in done.stderr
    assert src.read_bytes() == before
