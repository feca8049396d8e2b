"""COCO: every config builds and matches the published recipe, layer-decay groups, the synthetic data set, and a few
iterations of train + val, a resume and a test through the tools on generated data."""
import json
import os
import re
from pathlib import Path
from unittest import mock

import mmdet
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from pycocotools import mask as mask_utils
from test_stock_tools import stock_tool

from conftest import REPO, TINY, randomize, read_config, run_tool
from convnext_dense import ConvNeXt, output_shape
from convnext_dense.synthetic.coco import write_coco_demo
from convnext_dense.synthetic.scenes import SHAPES

CONFIGS = REPO / 'configs' / 'coco'
# the Mask2Former recipes follow mmdet's / mmseg's stock files instead: tests/test_mask2former.py; the DINO recipes
# detrex's: tests/test_dino.py
ALL_CONFIGS = sorted(p.stem for p in CONFIGS.glob('*.py') if not p.stem.startswith(('mask2former_', 'dino_')))
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
# ConvNeXt V2 Mask R-CNN (paper, Table 6; B's decay and drop path from mmdet's reproduction, L/H's our stated choice):
# arch, drop path, decay rate, FCMAE file, published box AP, mask AP
V2_RECIPES = {
    'mask_rcnn_convnext_v2_b': ('base', 0.4, 0.95, 'convnextv2_base_1k_224_fcmae.pt', 52.9, 46.6),
    'mask_rcnn_convnext_v2_l': ('large', 0.5, 0.9, 'convnextv2_large_1k_224_fcmae.pt', 54.4, 47.7),
    'mask_rcnn_convnext_v2_h': ('huge', 0.5, 0.9, 'convnextv2_huge_1k_224_fcmae.pt', 55.7, 48.9),
}
RTMDET = 'rtmdet_l_convnext_b'
DINOV3_CASCADE = {'cascade_dinov3_convnext_b', 'cascade_dinov3_convnext_l'}  # tests/test_dinov3_recipes.py
TWO_STAGE = [name for name in ALL_CONFIGS if name != RTMDET]


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
    assert set(RECIPES) | set(V2_RECIPES) | DINOV3_CASCADE | {RTMDET, 'demo_cascade_convnext'} == set(ALL_CONFIGS)


@pytest.mark.parametrize('name', TWO_STAGE)
def test_config_builds_and_the_neck_reads_the_backbone(name):
    cfg = load(name)
    assert cfg.custom_imports == dict(imports=['convnext_dense'], allow_failed_imports=False)
    model = build(cfg)
    backbone = model.backbone
    assert type(backbone).__module__ == 'convnext_dense.models.backbone'
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


@pytest.mark.parametrize('name', sorted(V2_RECIPES))
def test_v2_config_matches_the_published_recipe(name):
    arch, drop_path, decay_rate, weights, box_ap, mask_ap = V2_RECIPES[name]
    assert f'box AP {box_ap}, mask AP {mask_ap}' in (CONFIGS / f'{name}.py').read_text()
    cfg = load(name)
    model = cfg.model
    assert model.type == 'MaskRCNN'
    backbone = model.backbone
    assert (backbone.type, backbone.arch, backbone.drop_path_rate) == ('convnext_dense.ConvNeXt', arch, drop_path)
    assert backbone.use_grn and backbone.layer_scale_init_value <= 0 and tuple(backbone.out_indices) == (0, 1, 2, 3)
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint=f'checkpoints/{weights}')
    assert model.test_cfg.rcnn.nms.type == 'soft_nms'
    assert model.data_preprocessor.batch_augments == [dict(type='BatchFixedSizePad', size=(1024, 1024), pad_mask=True)]
    resize, crop = [t for t in cfg.train_dataloader.dataset.pipeline if t.type in ('RandomResize', 'RandomCrop')]
    assert (resize.scale, resize.ratio_range, resize.keep_ratio) == ((1024, 1024), (0.1, 2.0), True)
    assert (crop.crop_type, crop.crop_size, crop.allow_negative_crop) == ('absolute_range', (1024, 1024), True)
    assert cfg.train_dataloader.batch_size == 4  # x 8 GPUs: 32 images per iteration
    assert cfg.auto_scale_lr.base_batch_size == 32
    assert cfg.train_cfg.max_epochs == 36
    steps = cfg.param_scheduler[-1]
    assert (steps.type, steps.milestones, steps.gamma) == ('MultiStepLR', [27, 33], 0.1)
    wrapper = cfg.optim_wrapper
    assert wrapper.type == 'AmpOptimWrapper'
    assert (wrapper.optimizer.type, wrapper.optimizer.lr, wrapper.optimizer.weight_decay) == ('AdamW', 1e-4, 0.05)
    assert wrapper.constructor == 'convnext_dense.ConvNeXtLayerDecayOptimizerConstructor'
    assert (wrapper.paramwise_cfg.decay_rate, wrapper.paramwise_cfg.decay_type) == (decay_rate, 'layer_wise')


def pop_checked_loops_and_checkpoint_hook(ours: dict, theirs: dict) -> None:
    """Pop, from a config of ours and the stock recipe it follows (as dicts), what reliability_hooks.py replaces: our
    checked loops where the stock ones stand, our atomic checkpoint hook; assert each is the one the names say."""
    assert ours['default_hooks']['checkpoint'].pop('type') == ours.pop('checkpoint_hook')['type']
    theirs['default_hooks']['checkpoint'].pop('type')
    ours.pop('iter_train_loop')  # reliability_hooks.py's name for iteration-based schedules: unused here
    for key, loop, stock in (('train_cfg', 'epoch_train_loop', 'EpochBasedTrainLoop'),
                             ('val_cfg', 'val_loop', 'ValLoop'), ('test_cfg', 'test_loop', 'TestLoop')):
        assert (ours[key].pop('type'), theirs[key].pop('type')) == (ours.pop(loop), stock)  # mmengine's, checked


def unscoped(value):
    """``value`` without the ``_scope_`` keys mmengine adds to dicts inherited through ``mmdet::``."""
    if isinstance(value, dict):
        return {k: unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(unscoped(v) for v in value)
    return value


def test_rtmdet_config_is_mmdets_with_our_backbone():
    """Field by field the installed mmdet's rtmdet_l_convnext_b_4xb32-100e_coco.py (its placeholder resolved by
    mmengine), but for the backbone, the constructor, the added hooks and what the docstring says differs."""
    mmdet_config = Path(mmdet.__file__).parent / '.mim/configs/rtmdet/rtmdet_l_convnext_b_4xb32-100e_coco.py'
    theirs = unscoped(Config.fromfile(mmdet_config, import_custom_modules=False).to_dict())
    ours = unscoped(load(RTMDET).to_dict())
    assert ours.pop('custom_imports') == dict(imports=['convnext_dense'], allow_failed_imports=False)
    assert theirs.pop('custom_imports')['imports'] == ['mmpretrain.models']
    assert ours['model'].pop('backbone') == dict(
        type='convnext_dense.ConvNeXt', arch='base', out_indices=(1, 2, 3), drop_path_rate=0.7,
        layer_scale_init_value=1.0, with_cp=True, init_cfg=dict(
            type='Pretrained', prefix='backbone.',
            checkpoint='checkpoints/convnext-base_in21k-pre-3rdparty_in1k-384px_20221219-4570f792.pth'))
    assert theirs['model'].pop('backbone')['type'] == 'mmpretrain.ConvNeXt'
    assert ours['optim_wrapper'].pop('constructor') == 'convnext_dense.ConvNeXtLayerDecayOptimizerConstructor'
    assert theirs['optim_wrapper'].pop('constructor') == 'LearningRateDecayOptimizerConstructor'
    assert ours.pop('custom_hooks') == theirs.pop('custom_hooks') + ours.pop('reliability_hooks')
    pop_checked_loops_and_checkpoint_hook(ours, theirs)
    assert (ours.pop('auto_scale_lr'), theirs.pop('auto_scale_lr')) == (
        dict(enable=False, base_batch_size=128), dict(enable=False, base_batch_size=16))
    assert os.path.basename(ours.pop('checkpoint_file')) == os.path.basename(theirs.pop('checkpoint_file'))
    assert (ours.pop('arch'), ours.pop('out_indices')) == ('base', (1, 2, 3))
    assert ours == theirs


def tiny_v2_or_rtmdet(name: str) -> torch.nn.Module:
    """The config's detector on a tiny arch (its out_indices kept) with slim heads for 4 classes, at 64 px, without
    pretrained weights. RTMDet's GroupNorm (32 groups) needs channels in multiples of 32."""
    cfg = load(name)
    model, width = cfg.model, 32
    arch = dict(depths=(1, 1, 1, 1), channels=(32, 64, 128, 256)) if name == RTMDET else TINY
    model.backbone.arch, model.backbone.init_cfg = arch, None
    model.neck.in_channels = list(output_shape(arch, model.backbone.out_indices).channels)
    model.neck.out_channels = width
    if name == RTMDET:
        model.bbox_head.in_channels = model.bbox_head.feat_channels = width
        model.bbox_head.num_classes = 4
    else:
        model.data_preprocessor.batch_augments[0].size = (64, 64)
        model.rpn_head.in_channels = model.rpn_head.feat_channels = width
        roi = model.roi_head
        roi.bbox_roi_extractor.out_channels = roi.mask_roi_extractor.out_channels = width
        roi.bbox_head.in_channels, roi.bbox_head.fc_out_channels = width, 64
        roi.mask_head.in_channels = roi.mask_head.conv_out_channels = width
        roi.bbox_head.num_classes = roi.mask_head.num_classes = 4
        model.test_cfg.rpn.max_per_img, model.test_cfg.rcnn.score_thr = 50, 0.0  # untrained: keep some detections
    return revert_sync_batchnorm(MODELS.build(model))


def detection_batch(model: torch.nn.Module, training: bool, with_mask: bool) -> dict:
    gen = torch.Generator().manual_seed(0)
    samples = []
    for box in ([8.0, 6.0, 40.0, 50.0], [20.0, 24.0, 60.0, 58.0]):
        sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1.0, 1.0)))
        instances = InstanceData(bboxes=torch.tensor([box]), labels=torch.tensor([3]))
        if with_mask:
            mask = np.zeros((1, 64, 64), np.uint8)
            mask[0, int(box[1]):int(box[3]), int(box[0]):int(box[2])] = 1
            instances.masks = BitmapMasks(mask, 64, 64)
        sample.gt_instances = instances
        samples.append(sample)
    images = [torch.randint(0, 256, (3, 64, 64), generator=gen, dtype=torch.uint8) for _ in samples]
    return model.data_preprocessor(dict(inputs=images, data_samples=samples), training)


@pytest.mark.parametrize('name', ['mask_rcnn_convnext_v2_b', RTMDET])
def test_new_detectors_run_a_loss_and_a_predict_step(name):
    model = tiny_v2_or_rtmdet(name)
    with_mask = name != RTMDET
    model.train()
    losses = model(**detection_batch(model, True, with_mask), mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k for v in (v if isinstance(v, list) else [v]))
    assert torch.isfinite(total)
    total.backward()
    first = model.backbone.stages[1][0]
    assert first.pwconv1.weight.grad is not None and first.pwconv1.weight.grad.abs().sum() > 0
    if first.grn is not None:
        assert first.grn.gamma.grad is not None
    model.eval()
    with torch.no_grad():
        results = model(**detection_batch(model, False, with_mask), mode='predict')
    assert len(results) == 2
    for result in results:
        assert len(result.pred_instances) and torch.isfinite(result.pred_instances.bboxes).all()
        if with_mask:
            assert result.pred_instances.masks.shape[-2:] == (64, 64)


def mmpretrain_file(source: ConvNeXt, path: Path) -> str:
    """``source``'s weights as mmpretrain's ImageNet classifier file: its names, ``backbone.`` prefix, the final
    LayerNorm as ``backbone.norm3`` and a 10-class head."""
    renamed = {re.sub(r'\.pwconv(\d)\.', r'.pointwise_conv\1.', k.replace('.dwconv.', '.depthwise_conv.')): v
               for k, v in source.state_dict().items() if k.startswith(('downsample', 'stages', 'norm3'))}
    channels = source.out_channels[-1]
    torch.save(dict(state_dict={**{'backbone.' + k: v for k, v in renamed.items()},
                                'head.fc.weight': torch.zeros(10, channels), 'head.fc.bias': torch.zeros(10)}), path)
    return str(path)


def test_rtmdet_backbone_loads_and_applies_mmpretrains_final_norm(tmp_path):
    """mmpretrain's classification file keeps its final LayerNorm as backbone.norm3: RTMDet's stage-3 map goes
    through it (mmpretrain's gap_before_final_norm=False), norm1 and norm2 start at init."""
    source = randomize(ConvNeXt(TINY, layer_scale_init_value=1.0)).eval()
    path = mmpretrain_file(source, tmp_path / 'mmpretrain.pth')
    backbone_cfg = load(RTMDET).model.backbone
    backbone_cfg.arch, backbone_cfg.init_cfg.checkpoint = TINY, str(path)
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    assert torch.equal(backbone.norm3.weight, source.norm3.weight)
    assert torch.equal(backbone.norm1.weight, torch.ones(16))
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(backbone.eval()(image)[-1], source(image)[-1], rtol=0, atol=1e-5)


def test_rtmdet_trains_through_mmdets_train_tool(tmp_path):
    """The RTMDet recipe, shrunk (``tests/configs/tiny_rtmdet.py``), trains two epochs from an mmpretrain file
    through mmdet's own tools/train.py: Mosaic / MixUp, then the stage-2 pipeline, EMA, our layer-decay constructor
    and run-time guarantees, COCO evaluation."""
    write_coco_demo(str(tmp_path / 'data'), num_train=4, num_val=2, seed=0, size=64)
    source = randomize(ConvNeXt(dict(depths=(1, 1, 1, 1), channels=(32, 64, 128, 256)), layer_scale_init_value=1.0))
    env = dict(os.environ, COCO_ROOT=f'{tmp_path / "data"}/',
               CONVNEXT_PRETRAINED=mmpretrain_file(source, tmp_path / 'mmpretrain.pth'))
    log = run_tool(str(stock_tool('mmdet', 'train.py')), 'tests/configs/tiny_rtmdet.py', '--work-dir',
                   str(tmp_path / 'work'), env=env)
    assert 'mmpretrain layout' in log and 'classifier head, pre-training decoder), skipped (2)' in log
    assert 'Switch pipeline now!' in log
    for epoch in (1, 2):
        assert re.search(rf'Epoch\(train\) +\[{epoch}\]\[2/2\].*loss: ', log), log[-3000:]
    assert len(re.findall(r'coco/bbox_mAP: ', log)) == 2
