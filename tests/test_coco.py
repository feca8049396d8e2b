"""COCO: every config builds and matches the published recipe, layer-decay groups, the synthetic data set, and a few
iterations of train + val, a resume and a test through the tools on generated data."""
import json
import os
import re
from unittest import mock

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from pycocotools import mask as mask_utils

from conftest import REPO, read_config, run_tool
from convnext_dense import ConvNeXt
from convnext_dense.synthetic.coco import write_coco_demo
from convnext_dense.synthetic.scenes import SHAPES

CONFIGS = REPO / 'configs' / 'coco'
ALL_CONFIGS = sorted(p.stem for p in CONFIGS.glob('*.py'))
pytestmark = pytest.mark.usefixtures('default_paths')  # tests that set a path variable set it themselves

# The published recipes (the official ConvNeXt configs and paper), typed here again on purpose: the independent check.
# config: detector, arch, drop path, lr, decay rate, L, AMP, pretrained file, params (M, as published)
RECIPES = {
    'mask_rcnn_convnext_t': ('MaskRCNN', 'tiny', 0.4, 1e-4, 0.95, 6, True, 'convnext_tiny_1k_224.pth', 48),
    'cascade_convnext_t': ('CascadeRCNN', 'tiny', 0.4, 2e-4, 0.7, 6, True, 'convnext_tiny_1k_224.pth', 86),
    'cascade_convnext_s': ('CascadeRCNN', 'small', 0.6, 2e-4, 0.7, 12, True, 'convnext_small_1k_224.pth', 108),
    'cascade_convnext_b': ('CascadeRCNN', 'base', 0.7, 2e-4, 0.8, 12, True, 'convnext_base_1k_224.pth', 146),
    'cascade_convnext_b_in22k': ('CascadeRCNN', 'base', 0.6, 1e-4, 0.8, 12, True, 'convnext_base_22k_224.pth', 146),
    'cascade_convnext_l_in22k': ('CascadeRCNN', 'large', 0.7, 1e-4, 0.7, 12, False, 'convnext_large_22k_224.pth', 255),
    'cascade_convnext_xl_in22k': ('CascadeRCNN', 'xlarge', 0.8, 1e-4, 0.7, 12, False, 'convnext_xlarge_22k_224.pth',
                                  407),
}


@pytest.fixture(autouse=True)
def mmdet_scope():
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def load(name: str) -> Config:
    return read_config(CONFIGS / f'{name}.py')


def build(cfg: Config) -> torch.nn.Module:
    """The detector without pretrained weights and, for speed, without drawing random values; structure checks only.

    On one process SyncBN runs as BN, as the Runner makes it.
    """
    cfg.model.backbone.init_cfg = None
    with mock.patch.multiple(torch.nn.init, **{f: lambda t, *a, **k: t for f in
                                               ('uniform_', 'normal_', 'kaiming_uniform_', 'kaiming_normal_')}):
        return revert_sync_batchnorm(MODELS.build(cfg.model))


def test_every_config_is_covered():
    assert set(RECIPES) | {'demo_cascade_convnext'} == set(ALL_CONFIGS)


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_config_builds_and_the_neck_reads_the_backbone(name):
    cfg = load(name)
    assert cfg.custom_imports == dict(imports=['convnext_dense'], allow_failed_imports=False)
    model = build(cfg)
    backbone = model.backbone
    assert type(backbone).__module__ == 'convnext_dense.backbone'
    assert tuple(model.neck.in_channels) == backbone.out_channels
    for lateral, c in zip(model.neck.lateral_convs, backbone.out_channels):  # the built layers, not only the config
        assert lateral.conv.in_channels == c
    extractors = model.roi_head.bbox_roi_extractor
    for extractor in extractors if isinstance(extractors, torch.nn.ModuleList) else [extractors]:
        assert tuple(extractor.featmap_strides) == backbone.out_strides == (4, 8, 16, 32)
    if name in RECIPES:
        params = sum(p.numel() for p in model.parameters()) / 1e6
        assert params == pytest.approx(RECIPES[name][-1], rel=0.02)


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_config_matches_the_published_recipe(name):
    detector, arch, drop_path, lr, decay_rate, num_layers, amp, weights, _ = RECIPES[name]
    cfg = load(name)
    model = cfg.model
    assert model.type == detector
    backbone = model.backbone
    assert (backbone.type, backbone.arch) == ('convnext_dense.ConvNeXt', arch)
    assert tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert (backbone.drop_path_rate, backbone.layer_scale_init_value) == (drop_path, 1.0)
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=f'checkpoints/{weights}')
    assert (model.neck.type, model.neck.out_channels, model.neck.num_outs) == ('FPN', 256, 5)
    if detector == 'CascadeRCNN':
        stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
        for head, std in zip(model.roi_head.bbox_head, stds, strict=True):
            assert (head.type, head.num_shared_convs, head.num_shared_fcs, head.fc_out_channels) == \
                ('ConvFCBBoxHead', 4, 1, 1024)
            assert head.norm_cfg.type == 'SyncBN' and head.num_classes == 80
            assert head.reg_decoded_bbox and not head.reg_class_agnostic
            assert head.loss_bbox == dict(type='GIoULoss', loss_weight=10.0)
            assert head.bbox_coder.target_stds == std
    else:
        assert (model.roi_head.bbox_head.type, model.roi_head.mask_head.type) == ('Shared2FCBBoxHead', 'FCNMaskHead')

    wrapper = cfg.optim_wrapper
    assert wrapper.type == ('AmpOptimWrapper' if amp else 'OptimWrapper')
    assert wrapper.optimizer == dict(type='AdamW', lr=lr, betas=(0.9, 0.999), weight_decay=0.05)
    assert wrapper.constructor == 'convnext_dense.ConvNeXtLayerDecayOptimizerConstructor'
    assert (wrapper.paramwise_cfg.decay_rate, wrapper.paramwise_cfg.decay_type) == (decay_rate, 'layer_wise')
    derived = ConvNeXt(arch, out_indices=(0,)).num_layers()  # what the constructor uses when the config names none
    assert wrapper.paramwise_cfg.get('num_layers', derived) == num_layers
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.begin, warmup.end, warmup.by_epoch) == \
        ('LinearLR', 0.001, 0, 500, False)
    assert (steps.type, steps.milestones, steps.gamma, steps.by_epoch) == ('MultiStepLR', [27, 33], 0.1, True)
    assert cfg.train_cfg.max_epochs == 36
    assert cfg.train_dataloader.batch_size == 2  # x 8 GPUs
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)

    data = cfg.train_dataloader.dataset
    assert data.data_root == cfg.test_dataloader.dataset.data_root == 'data/coco/'
    assert (data.ann_file, data.data_prefix.img) == ('annotations/instances_train2017.json', 'train2017/')
    assert cfg.test_evaluator.ann_file == 'data/coco/annotations/instances_val2017.json'
    assert cfg.test_evaluator.metric == ['bbox', 'segm']
    flip, choice = data.pipeline[2:4]
    assert (flip.type, flip.prob) == ('RandomFlip', 0.5)
    multi_scale = [(short, 1333) for short in [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800]]
    policy_a, policy_b = choice.transforms
    assert [t.type for t in policy_a] == ['RandomChoiceResize'] and policy_a[0].scales == multi_scale
    assert [t.type for t in policy_b] == ['RandomChoiceResize', 'RandomCrop', 'RandomChoiceResize']
    assert policy_b[0].scales == [(400, 1333), (500, 1333), (600, 1333)]
    assert (policy_b[1].crop_type, policy_b[1].crop_size) == ('absolute_range', (384, 600))
    assert policy_b[2].scales == multi_scale


@pytest.mark.parametrize('name', ['cascade_convnext_t', 'cascade_convnext_b', 'mask_rcnn_convnext_t'])
def test_layer_wise_lr_scales_follow_the_recipe(name):
    """lr = base_lr * rate ** (L + 1 - layer id): stem 0, stage 0 -> 1, last stage-2 block -> L - 1, stage 3 -> L."""
    _, _, _, lr, rate, num_layers, _, _, _ = RECIPES[name]
    cfg = load(name)
    cfg.optim_wrapper.type = 'OptimWrapper'  # mmengine's AmpOptimWrapper refuses to build without a GPU
    model = build(cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {id(p): group for group in wrapper.optimizer.param_groups for p in group['params']}
    params = dict(model.named_parameters())
    last_block = len(model.backbone.stages[2]) - 1
    layer_ids = {'backbone.downsample_layers.0.0.weight': 0, 'backbone.stages.0.0.pwconv1.weight': 1,
                 'backbone.downsample_layers.1.1.weight': 2, f'backbone.stages.2.{last_block}.pwconv1.weight':
                 num_layers - 1, 'backbone.stages.3.2.pwconv1.weight': num_layers,
                 'backbone.norm3.weight': num_layers + 1, 'neck.fpn_convs.0.conv.weight': num_layers + 1,
                 'rpn_head.rpn_conv.weight': num_layers + 1}
    for param_name, layer in layer_ids.items():
        assert groups[id(params[param_name])]['lr'] == pytest.approx(lr * rate**(num_layers + 1 - layer)), param_name
    for param_name in ('backbone.stages.1.0.gamma', 'backbone.norm0.bias', 'neck.fpn_convs.0.conv.bias'):
        assert groups[id(params[param_name])]['weight_decay'] == 0.0, param_name
    assert groups[id(params['backbone.stages.1.0.pwconv2.weight'])]['weight_decay'] == 0.05
    assert len(groups) == len(params)  # every trainable parameter is in exactly one group


def test_roi_features_are_read_correctly():
    """mmcv's RoIAlign reads its input as contiguous NCHW memory; the features the heads pool must be laid out so."""
    cfg = load('demo_cascade_convnext')
    cfg.model.backbone.init_cfg = None
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    rois = torch.tensor([[0, 3.0, 5.0, 60.0, 41.0], [0, 70.0, 12.0, 120.0, 100.0]])
    extractor = model.roi_head.bbox_roi_extractor[0]
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, 128, 128))
        pooled = extractor(feats[:extractor.num_inputs], rois)
        reference = extractor([f.contiguous() for f in feats[:extractor.num_inputs]], rois)
    assert torch.equal(pooled, reference)


def test_env_vars_override_weights_and_data_root(monkeypatch):
    monkeypatch.setenv('CONVNEXT_PRETRAINED', '/weights/mine.pth')
    monkeypatch.setenv('COCO_ROOT', '/datasets/coco/')
    cfg = load('cascade_convnext_l_in22k')
    assert cfg.model.backbone.init_cfg.checkpoint == '/weights/mine.pth'
    assert cfg.train_dataloader.dataset.data_root == cfg.test_dataloader.dataset.data_root == '/datasets/coco/'
    assert cfg.test_evaluator.ann_file == '/datasets/coco/annotations/instances_val2017.json'


def test_missing_pretrained_file_names_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv('CONVNEXT_PRETRAINED', str(tmp_path / 'convnext_small_1k_224.pth'))
    cfg = load('cascade_convnext_s')
    backbone = MODELS.build(dict(cfg.model.backbone, arch=dict(depths=(1, 1, 1, 1), channels=(8, 16, 24, 32))))
    with pytest.raises(FileNotFoundError, match='https://.*/convnext_small_1k_224.pth'):
        backbone.init_weights()


def test_demo_data_is_coco_and_deterministic(tmp_path):
    counts = write_coco_demo(str(tmp_path / 'a'), num_train=3, num_val=2, seed=5, size=64)
    write_coco_demo(str(tmp_path / 'b'), num_train=3, num_val=2, seed=5, size=64)
    for split, num_images in (('train2017', 3), ('val2017', 2)):
        ann_file = tmp_path / 'a' / 'annotations' / f'instances_{split}.json'
        assert ann_file.read_bytes() == (tmp_path / 'b' / 'annotations' / f'instances_{split}.json').read_bytes()
        coco = json.loads(ann_file.read_text())
        assert [c['name'] for c in coco['categories']] == list(SHAPES)
        assert [im['file_name'] for im in coco['images']] == [f'{i:012d}.png' for i in range(1, num_images + 1)]
        assert all((tmp_path / 'a' / split / im['file_name']).is_file() for im in coco['images'])
        assert counts[split] == (num_images, len(coco['annotations'])) and coco['annotations']
        for ann in coco['annotations']:
            mask = mask_utils.decode(dict(ann['segmentation'], counts=ann['segmentation']['counts'].encode()))
            ys, xs = np.nonzero(mask)
            assert ann['area'] == mask.sum() > 0 and ann['iscrowd'] == 0
            assert ann['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    assert (tmp_path / 'a' / 'val2017' / '000000000002.png').read_bytes() == \
        (tmp_path / 'b' / 'val2017' / '000000000002.png').read_bytes()


def test_train_resume_and_test_through_the_tools(tmp_path):
    write_coco_demo(str(tmp_path / 'data'), num_train=4, num_val=2, seed=0, size=128)
    env = dict(os.environ, COCO_DEMO_ROOT=f'{tmp_path / "data"}/')
    config = str(CONFIGS / 'demo_cascade_convnext.py')
    options = ['train_cfg.val_interval=1', 'train_dataloader.batch_size=2']
    for loader in ('train', 'val', 'test'):
        options += [f'{loader}_dataloader.num_workers=0', f'{loader}_dataloader.persistent_workers=False']
    work_dir = tmp_path / 'work'
    log = run_tool('tools/train.py', config, '--work-dir', str(work_dir),
                   '--cfg-options', 'train_cfg.max_epochs=1', *options, env=env)
    assert re.search(r'Epoch\(train\) \[1\]\[2/2\].*loss: ', log) and re.search(r'coco/segm_mAP: ', log)
    assert (work_dir / 'epoch_1.pth').is_file()

    log = run_tool('tools/train.py', config, '--work-dir', str(work_dir), '--resume',
                   '--cfg-options', 'train_cfg.max_epochs=2', *options, env=env)
    assert 'resumed epoch: 1' in log and 'Epoch(train) [1]' not in log and 'Epoch(train) [2][2/2]' in log
    checkpoint = work_dir / 'epoch_2.pth'
    assert checkpoint.is_file()

    show_dir = tmp_path / 'show'
    log = run_tool('tools/test.py', config, str(checkpoint), '--work-dir', str(work_dir), '--show-dir', str(show_dir),
                   '--cfg-options', *options, env=env)
    assert re.search(r'^coco/bbox_mAP: \d', log, re.M) and re.search(r'^coco/segm_mAP: \d', log, re.M)
    assert len(list(show_dir.rglob('*.png'))) == 2
