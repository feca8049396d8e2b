"""ADE20K: every config builds and matches the published recipe, slide and TTA inference, the synthetic data set, and
a few iterations of train + test through the tools on generated data."""
import filecmp
import os
import re
from unittest import mock

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from conftest import REPO, TINY, read_config, run_tool
from convnext_dense import ConvNeXt
from convnext_dense.synthetic.ade import CLASSES, write_ade_demo
from convnext_dense.synthetic.scenes import SHAPES, render_scene

CONFIGS = REPO / 'configs' / 'ade20k'

# The published recipes (the official ConvNeXt configs and paper), typed here again on purpose: the independent check.
# config: arch, crop, slide stride, drop path, L, AMP, lr, pretrained file, params (M, as published)
RECIPES = {
    'upernet_convnext_t_512': ('tiny', 512, 341, 0.4, 6, True, 1e-4, 'convnext_tiny_1k_224.pth', 60),
    'upernet_convnext_s_512': ('small', 512, 341, 0.3, 12, True, 1e-4, 'convnext_small_1k_224.pth', 82),
    'upernet_convnext_b_512': ('base', 512, 341, 0.4, 12, True, 1e-4, 'convnext_base_1k_224.pth', 122),
    'upernet_convnext_b_640_in22k': ('base', 640, 426, 0.4, 12, True, 1e-4, 'convnext_base_22k_224.pth', 122),
    'upernet_convnext_l_640_in22k': ('large', 640, 426, 0.4, 12, False, 1e-4, 'convnext_large_22k_224.pth', 235),
    'upernet_convnext_xl_640_in22k': ('xlarge', 640, 426, 0.4, 12, False, 8e-5, 'convnext_xlarge_22k_224.pth', 391),
}
# ConvNeXt V2 (paper, Table 7; drop path, lr and layer decay our stated choice within the paper's sweep):
# arch, crop, drop path, pretrained file, published mIoU (multi-scale)
V2_RECIPES = {
    'upernet_convnext_v2_b_512': ('base', 512, 0.4, 'convnextv2_base_1k_224_ema.pt', 52.1),
    'upernet_convnext_v2_l_512': ('large', 512, 0.4, 'convnextv2_large_1k_224_ema.pt', 53.7),
    'upernet_convnext_v2_h_512': ('huge', 512, 0.4, 'convnextv2_huge_1k_224_ema.pt', 55.0),
    'upernet_convnext_v2_h_640_in22k': ('huge', 640, 0.4, 'convnextv2_huge_22k_512_ema.pt', 57.0),
}
# the paper's multi-scale test: [0.75, 0.875, 1.0, 1.125, 1.25] x (2048, 512) or x (2560, 640), as (W, H)
V2_TTA_SCALES = {512: [(1536, 384), (1792, 448), (2048, 512), (2304, 576), (2560, 640)],
                 640: [(1920, 480), (2240, 560), (2560, 640), (2880, 720), (3200, 800)]}
# DINOv3 ConvNeXt (tests/test_dinov3_recipes.py): UperNet from the in22k recipes, built here with the others; the
# linear probes are no UperNet and are checked there; the Mask2Former recipes follow mmdet's / mmseg's stock files
# instead: tests/test_mask2former.py
DINOV3_UPERNET = {'upernet_dinov3_convnext_b_640', 'upernet_dinov3_convnext_l_640'}
ALL_CONFIGS = sorted(p.stem for p in CONFIGS.glob('*.py') if not p.stem.startswith(('linear_dinov3_', 'mask2former_')))
pytestmark = pytest.mark.usefixtures('default_paths')  # tests that set a path variable set it themselves


@pytest.fixture(autouse=True)
def mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def load(name: str) -> Config:
    return read_config(CONFIGS / f'{name}.py')


def build(cfg: Config, random_init: bool = True) -> torch.nn.Module:
    """The segmentor without pretrained weights; on one process SyncBN runs as BN, as the Runner makes it.

    ``random_init=False`` leaves the weights uninitialised, for checks of structure only: drawing random values for
    the 100-400M parameters of the large configs takes seconds each.
    """
    cfg.model.backbone.init_cfg = None
    if random_init:
        return revert_sync_batchnorm(MODELS.build(cfg.model))
    with mock.patch.multiple(torch.nn.init, **{f: lambda t, *a, **k: t for f in
                                               ('uniform_', 'normal_', 'kaiming_uniform_', 'kaiming_normal_')}):
        return revert_sync_batchnorm(MODELS.build(cfg.model))


def tiny(cfg: Config, head_channels: int = 16) -> Config:
    """The config's model on the TINY arch with slim heads: the real code paths at a fraction of the cost."""
    model = cfg.model
    model.backbone.arch, model.backbone.drop_path_rate = TINY, 0.0
    model.decode_head.in_channels, model.decode_head.channels = TINY['channels'], head_channels
    model.auxiliary_head.in_channels, model.auxiliary_head.channels = TINY['channels'][2], head_channels
    return cfg


def test_every_config_is_covered():
    assert set(RECIPES) | set(V2_RECIPES) | DINOV3_UPERNET | {'demo_upernet_convnext'} == set(ALL_CONFIGS)


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_config_builds_and_heads_read_the_backbone(name):
    cfg = load(name)
    assert 'convnext_dense' in cfg.custom_imports.imports and not cfg.custom_imports.allow_failed_imports
    model = build(cfg, random_init=False)
    backbone, decode, aux = model.backbone, model.decode_head, model.auxiliary_head
    assert type(backbone).__module__ == 'convnext_dense.models.backbone'
    assert backbone.out_strides == (4, 8, 16, 32)
    assert tuple(decode.in_channels) == tuple(backbone.out_channels[i] for i in decode.in_index)
    assert aux.in_channels == backbone.out_channels[aux.in_index]
    for lateral, c in zip(decode.lateral_convs, backbone.out_channels):  # the built layers, not only the config
        assert lateral.conv.in_channels == c
    assert decode.psp_modules[0][1].conv.in_channels == backbone.out_channels[-1]
    assert aux.convs[0].conv.in_channels == backbone.out_channels[aux.in_index]
    if name in RECIPES:
        params = sum(p.numel() for p in model.parameters()) / 1e6
        assert params == pytest.approx(RECIPES[name][-1], rel=0.02)


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_config_matches_the_published_recipe(name):
    arch, crop, stride, drop_path, num_layers, amp, lr, weights, _ = RECIPES[name]
    cfg = load(name)
    model = cfg.model
    assert model.backbone.arch == arch and model.backbone.drop_path_rate == drop_path
    assert model.backbone.init_cfg == dict(type='Pretrained', checkpoint=f'checkpoints/{weights}')
    assert model.data_preprocessor.size == (crop, crop)
    assert model.test_cfg == dict(mode='slide', crop_size=(crop, crop), stride=(stride, stride))
    head, aux = model.decode_head, model.auxiliary_head
    assert (head.type, tuple(head.in_index), tuple(head.pool_scales), head.channels, head.dropout_ratio) == \
        ('UPerHead', (0, 1, 2, 3), (1, 2, 3, 6), 512, 0.1)
    assert (aux.type, aux.in_index, aux.channels, aux.loss_decode.loss_weight) == ('FCNHead', 2, 256, 0.4)
    assert head.norm_cfg.type == aux.norm_cfg.type == 'SyncBN'
    assert head.num_classes == aux.num_classes == 150

    wrapper = cfg.optim_wrapper
    assert wrapper.type == ('AmpOptimWrapper' if amp else 'OptimWrapper')
    assert wrapper.optimizer == dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.05)
    assert wrapper.constructor == 'convnext_dense.ConvNeXtLayerDecayOptimizerConstructor'
    assert (wrapper.paramwise_cfg.decay_rate, wrapper.paramwise_cfg.decay_type) == (0.9, 'stage_wise')
    derived = ConvNeXt(arch, out_indices=(0,)).num_layers()  # what the constructor uses when the config names none
    assert wrapper.paramwise_cfg.get('num_layers', derived) == num_layers
    warmup, poly = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.begin, warmup.end, warmup.by_epoch) == \
        ('LinearLR', 1e-6, 0, 1500, False)
    assert (poly.type, poly.power, poly.eta_min, poly.begin, poly.end, poly.by_epoch) == \
        ('PolyLR', 1.0, 0.0, 1500, 160000, False)
    assert cfg.train_cfg.max_iters == 160000
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs

    train, test = cfg.train_dataloader.dataset, cfg.test_dataloader.dataset
    assert train.type == test.type == 'ADE20KDataset'
    assert train.data_root == test.data_root == 'data/ade/ADEChallengeData2016'
    assert [t for t in train.pipeline if t.type == 'LoadAnnotations'][0].reduce_zero_label
    assert [t for t in train.pipeline if t.type == 'RandomCrop'][0].crop_size == (crop, crop)
    scales, flips = cfg.tta_pipeline[1].transforms[:2]
    assert [t.scale_factor for t in scales] == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert [t.prob for t in flips] == [0.0, 1.0]
    assert cfg.tta_model.type == 'SegTTAModel'


@pytest.mark.parametrize('name', ['upernet_convnext_t_512', 'upernet_convnext_s_512'])
def test_stage_wise_lr_scales_use_the_published_num_layers(name):
    """The constructor derives L from the depths; each stage must get the published lr (L = 6 tiny, 12 small)."""
    num_layers, lr = RECIPES[name][4], RECIPES[name][6]
    cfg = load(name)
    cfg.optim_wrapper.type = 'OptimWrapper'  # mmengine's AmpOptimWrapper refuses to build without a GPU
    del cfg.optim_wrapper.loss_scale
    model = build(cfg, random_init=False)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {id(p): group['lr'] for group in wrapper.optimizer.param_groups for p in group['params']}
    params = dict(model.named_parameters())
    last_block = len(model.backbone.stages[2]) - 1
    layer_ids = {'backbone.downsample_layers.0.0.weight': 0, 'backbone.downsample_layers.3.1.weight': 0,
                 'backbone.stages.0.0.pwconv1.weight': 1, f'backbone.stages.2.{last_block}.pwconv1.weight': 3,
                 'backbone.stages.3.0.pwconv1.weight': 4, 'backbone.norm3.weight': num_layers + 1,
                 'decode_head.conv_seg.weight': num_layers + 1}
    for param_name, layer in layer_ids.items():
        assert lrs[id(params[param_name])] == pytest.approx(lr * 0.9**(num_layers + 1 - layer)), param_name


def test_env_vars_override_weights_and_data_root(monkeypatch):
    monkeypatch.setenv('CONVNEXT_PRETRAINED', '/weights/mine.pth')
    monkeypatch.setenv('ADE20K_ROOT', '/datasets/ade')
    cfg = Config.fromfile(str(CONFIGS / 'upernet_convnext_b_640_in22k.py'))
    assert cfg.model.backbone.init_cfg.checkpoint == '/weights/mine.pth'
    assert cfg.train_dataloader.dataset.data_root == cfg.test_dataloader.dataset.data_root == '/datasets/ade'


def test_missing_pretrained_file_names_the_download(tmp_path):
    backbone = MODELS.build(tiny(load('upernet_convnext_t_512')).model.backbone)
    backbone.init_cfg['checkpoint'] = str(tmp_path / 'convnext_tiny_1k_224.pth')
    with pytest.raises(FileNotFoundError, match='https://.*/convnext_tiny_1k_224.pth'):
        backbone.init_weights()


def test_slide_inference_on_sides_not_multiple_of_the_crop():
    cfg = tiny(load('upernet_convnext_t_512'))
    model = build(cfg).eval()
    height, width = 600, 701  # two windows down (stride 341), two across; neither side a multiple of 512
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width))
    with torch.no_grad():
        result = model.predict(torch.randn(1, 3, height, width), [SegDataSample(metainfo=meta)])[0]
    assert result.seg_logits.data.shape == (150, height, width)
    assert result.pred_sem_seg.data.shape == (1, height, width)
    assert torch.isfinite(result.seg_logits.data).all()


def test_demo_data_layout_labels_and_determinism(tmp_path):
    write_ade_demo(str(tmp_path / 'a'), num_train=3, num_val=2, seed=7, size=48)
    write_ade_demo(str(tmp_path / 'b'), num_train=5, num_val=2, seed=7, size=48)
    for split, infix, count in (('training', 'train', 3), ('validation', 'val', 2)):
        images = sorted((tmp_path / 'a' / 'images' / split).iterdir())
        labels = sorted((tmp_path / 'a' / 'annotations' / split).iterdir())
        assert [p.name for p in images] == [f'ADE_{infix}_{i:08d}.jpg' for i in range(1, count + 1)]
        assert [p.stem for p in labels] == [p.stem for p in images] and all(p.suffix == '.png' for p in labels)
        for image, label in zip(images, labels):
            seg = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
            assert seg.dtype == np.uint8 and seg.shape == cv2.imread(str(image)).shape[:2] == (48, 48)
            assert set(np.unique(seg)) <= set(range(1, len(CLASSES) + 1))  # 0 (ignore) is never needed
            assert (seg == 1).any() and (seg > 1).any()  # background and at least one shape
    # same seed, same validation files whatever num_train is
    assert filecmp.cmpfiles(tmp_path / 'a' / 'images' / 'validation', tmp_path / 'b' / 'images' / 'validation',
                            ['ADE_val_00000001.jpg', 'ADE_val_00000002.jpg'], shallow=False)[0] == \
        ['ADE_val_00000001.jpg', 'ADE_val_00000002.jpg']
    assert filecmp.cmp(tmp_path / 'a' / 'annotations' / 'training' / 'ADE_train_00000003.png',
                       tmp_path / 'b' / 'annotations' / 'training' / 'ADE_train_00000003.png', shallow=False)


def test_max_overlap_keeps_silhouettes_whole():
    """With max_overlap=0 no shape covers another, so every circle keeps its full disc (it fills ~pi/4 of its box);
    with the default, later shapes cut into earlier ones and some circles lose part of their disc."""
    def circle_fills(max_overlap):
        rng = np.random.default_rng(0)
        for _ in range(40):
            scene = render_scene(rng, 96, 96, max_instances=4, min_size=24, max_size=48, min_visible=1,
                                 max_overlap=max_overlap)
            for mask in scene.masks[scene.labels == SHAPES.index('circle')]:
                ys, xs = np.nonzero(mask)
                yield mask.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))

    assert min(circle_fills(0.0)) > 0.7
    assert min(circle_fills(1.0)) < 0.6


def test_train_and_val_then_tta_test_through_the_tools(tmp_path):
    write_ade_demo(str(tmp_path / 'data'), num_train=4, num_val=2, seed=0, size=64)
    env = dict(os.environ, ADE_DEMO_ROOT=str(tmp_path / 'data'))
    config = str(CONFIGS / 'demo_upernet_convnext.py')
    options = ['--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'train_dataloader.batch_size=2',
               'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
               'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
               'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False']
    work_dir = tmp_path / 'work'
    log = run_tool('tools/train.py', config, '--work-dir', str(work_dir), *options, env=env)
    assert re.search(r'Iter\(train\) \[2/2\].*loss: ', log) and re.search(r'mIoU: \d', log)
    checkpoint = work_dir / 'iter_2.pth'
    assert checkpoint.is_file()

    show_dir = tmp_path / 'show'
    log = run_tool('tools/test.py', config, str(checkpoint), '--work-dir', str(work_dir), '--tta',
                   '--show-dir', str(show_dir), *options, env=env)
    assert re.search(r'^mIoU: \d', log, re.M) and '|   circle   |' in log  # summary line and per-class table
    assert len(list(show_dir.rglob('*.png'))) == 2


@pytest.mark.parametrize('name', sorted(V2_RECIPES))
def test_v2_config_matches_the_published_recipe(name):
    arch, crop, drop_path, weights, miou = V2_RECIPES[name]
    assert f'published mIoU: {miou}' in (CONFIGS / f'{name}.py').read_text()
    cfg = load(name)
    backbone = cfg.model.backbone
    assert (backbone.arch, backbone.drop_path_rate, backbone.use_grn) == (arch, drop_path, True)
    assert backbone.layer_scale_init_value <= 0
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=f'checkpoints/{weights}')
    stride = {512: 341, 640: 426}[crop]
    assert cfg.model.test_cfg == dict(mode='slide', crop_size=(crop, crop), stride=(stride, stride))
    assert (cfg.model.decode_head.type, cfg.model.decode_head.channels) == ('UPerHead', 512)
    assert cfg.model.auxiliary_head.loss_decode.loss_weight == 0.4
    wrapper = cfg.optim_wrapper
    assert wrapper.type == 'AmpOptimWrapper'
    assert wrapper.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05)
    assert (wrapper.paramwise_cfg.decay_rate, wrapper.paramwise_cfg.decay_type) == (0.9, 'layer_wise')
    assert cfg.train_cfg.max_iters == 160000 and cfg.train_dataloader.batch_size == 2  # x 8 GPUs
    scales, flips = cfg.tta_pipeline[1].transforms[:2]
    assert [tuple(t.scale) for t in scales] == V2_TTA_SCALES[crop] and all(t.keep_ratio for t in scales)
    assert [t.prob for t in flips] == [0.0, 1.0]


@pytest.mark.parametrize('name', ['upernet_convnext_v2_b_512', 'upernet_convnext_v2_h_640_in22k'])  # one per crop
def test_v2_segmentor_runs_a_loss_and_a_predict_step(name):
    cfg = tiny(load(name))
    cfg.model.data_preprocessor.size = cfg.model.test_cfg.crop_size = (64, 64)  # a 64 px batch, one window
    model = build(cfg)
    assert model.backbone.stages[0][0].grn is not None and model.backbone.stages[0][0].gamma is None
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 64, 64), generator=gen))
        samples.append(sample)
    images = [torch.randint(0, 256, (3, 64, 64), generator=gen, dtype=torch.uint8) for _ in samples]
    model.train()
    data = model.data_preprocessor(dict(inputs=images, data_samples=samples), True)
    losses = model(**data, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.stages[0][0].grn.gamma.grad is not None
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(dict(inputs=images, data_samples=samples), False), mode='predict')
    assert [r.pred_sem_seg.data.shape for r in results] == [(1, 64, 64)] * 2
