"""DINO + ConvNeXt: the six configs are detrex's published recipe field by field (values transcribed below from
detrex's files) and mmdet's installed DINO recipe for the rest; the shrunk one trains, tests and infers through
mmdet's own tools and ours; the layer-decay constructor gives DINO's transformer, queries and level embeddings what
mmengine's default constructor gives them."""
import copy
import inspect
import json
import os
import re
import runpy
import sys
from pathlib import Path
from unittest import mock

import mmdet
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from test_coco import pop_checked_loops_and_checkpoint_hook, unscoped
from test_mask2former import named_options
from test_stock_tools import stock_tool

from conftest import REPO, output, read_config, tool
from convnext_dense import ConvNeXt
from convnext_dense.specs.arch import resolve_arch
from convnext_dense.synthetic.coco import write_coco_demo

CONFIGS = REPO / 'configs' / 'coco'
TINY_DINO = REPO / 'tests' / 'configs' / 'tiny_dino.py'
MMDET_DINO = Path(mmdet.__file__).parent / '.mim/configs/dino/dino-4scale_r50_8xb2-12e_coco.py'
pytestmark = pytest.mark.usefixtures('default_paths')

# detrex (IDEA-Research/detrex e244e6c), typed here again on purpose: {config path: (value, the file it is from)}.
# Paths under projects/dino/configs/ are shortened to models/ and dino-convnext/; common/ is configs/common/.
R50, CNX = 'models/dino_r50.py', 'models/dino_convnext.py'
LARGE = 'dino-convnext/dino_convnext_large_384_4scale_12ep.py'
SHORT_EDGES = [(s, 1333) for s in (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)]
DETREX = {
    'model.num_queries': (900, R50),
    'model.as_two_stage': (True, 'modeling/dino.py (two-stage always)'),
    'model.with_box_refine': (True, 'modeling/dino_transformer.py (look_forward_twice, per-layer box heads)'),
    'model.data_preprocessor.mean': ([123.675, 116.28, 103.53], R50),
    'model.data_preprocessor.std': ([58.395, 57.12, 57.375], R50),
    'model.data_preprocessor.bgr_to_rgb': (True, R50 + " (input_format='RGB')"),
    'model.data_preprocessor.pad_size_divisor': (1, 'modeling/dino.py (ImageList.from_tensors, no divisibility)'),
    'model.backbone.out_indices': ((1, 2, 3), CNX),
    'model.backbone.drop_path_rate': (0.0, CNX),
    'model.backbone.layer_scale_init_value': (1.0, CNX),
    'model.positional_encoding.num_feats': (128, R50),
    'model.positional_encoding.temperature': (10000, R50),
    'model.positional_encoding.normalize': (True, R50),
    'model.positional_encoding.offset': (-0.5, R50),
    'model.neck.out_channels': (256, R50),
    'model.neck.kernel_size': (1, R50),
    'model.neck.num_outs': (4, R50),
    'model.neck.norm_cfg': (dict(type='GN', num_groups=32), R50),
    'model.neck.act_cfg': (None, R50),
    'model.neck.bias': (True, 'detrex/modeling/neck/channel_mapper.py (bias=True)'),
    'model.encoder.num_layers': (6, R50),
    'model.encoder.layer_cfg.self_attn_cfg.embed_dims': (256, R50),
    'model.encoder.layer_cfg.self_attn_cfg.num_levels': (4, R50),
    'model.encoder.layer_cfg.self_attn_cfg.dropout': (0.0, R50),
    'model.encoder.layer_cfg.ffn_cfg.feedforward_channels': (2048, R50),
    'model.encoder.layer_cfg.ffn_cfg.ffn_drop': (0.0, R50),
    'model.decoder.num_layers': (6, R50),
    'model.decoder.return_intermediate': (True, R50),
    'model.decoder.layer_cfg.self_attn_cfg.num_heads': (8, R50),
    'model.decoder.layer_cfg.self_attn_cfg.dropout': (0.0, R50),
    'model.decoder.layer_cfg.cross_attn_cfg.num_levels': (4, R50),
    'model.decoder.layer_cfg.cross_attn_cfg.dropout': (0.0, R50),
    'model.decoder.layer_cfg.ffn_cfg.feedforward_channels': (2048, R50),
    'model.decoder.layer_cfg.ffn_cfg.ffn_drop': (0.0, R50),
    'model.bbox_head.num_classes': (80, R50),
    'model.bbox_head.loss_cls.type': ('FocalLoss', R50),
    'model.bbox_head.loss_cls.alpha': (0.25, R50),
    'model.bbox_head.loss_cls.gamma': (2.0, R50),
    'model.bbox_head.loss_cls.loss_weight': (1.0, R50),
    'model.bbox_head.loss_bbox.loss_weight': (5.0, R50),
    'model.bbox_head.loss_iou.loss_weight': (2.0, R50),
    'model.train_cfg.assigner.match_costs': ([
        dict(type='FocalLossCost', weight=2.0),
        dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
        dict(type='IoUCost', iou_mode='giou', weight=2.0)], R50),
    'model.dn_cfg.label_noise_scale': (0.5, R50 + ' (label_noise_ratio; the DINO class default is 0.2)'),
    'model.dn_cfg.box_noise_scale': (1.0, R50),
    'model.dn_cfg.group_cfg.num_dn_queries': (100, R50 + ' (dn_number)'),
    'model.test_cfg.max_per_img': (300, 'modeling/dino.py (select_box_nums_for_evaluation)'),
    'optim_wrapper.type': ('OptimWrapper', 'common/train.py (amp disabled)'),
    'optim_wrapper.optimizer.type': ('AdamW', 'common/optim.py'),
    'optim_wrapper.optimizer.lr': (1e-4, LARGE),
    'optim_wrapper.optimizer.betas': ((0.9, 0.999), LARGE),
    'optim_wrapper.optimizer.weight_decay': (1e-4, LARGE),
    'optim_wrapper.clip_grad': (dict(max_norm=0.1, norm_type=2), LARGE),
    'optim_wrapper.paramwise_cfg': (dict(custom_keys={'backbone': dict(lr_mult=0.1)}, norm_decay_mult=0.0),
                                    LARGE + ' (lr_factor_func), common/optim.py (weight_decay_norm=0.0)'),
    'auto_scale_lr.base_batch_size': (16, LARGE + ' (total_batch_size)'),
    'train_cfg.max_epochs': (12, 'common/coco_schedule.py (lr_multiplier_12ep: 12 epochs, decay at 11, no warmup)'),
    'param_scheduler': ([dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[11], gamma=0.1)],
                        'common/coco_schedule.py (values [1.0, 0.1], warmup_epochs 0)'),
    'train_dataloader.dataset.filter_cfg.filter_empty_gt': (True, 'common/data/coco_detr.py (detectron2 filter)'),
    'train_dataloader.dataset.pipeline': ([
        dict(type='LoadImageFromFile', backend_args=None),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomChoice', transforms=[
            [dict(type='RandomChoiceResize', scales=SHORT_EDGES, keep_ratio=True)],
            [dict(type='RandomChoiceResize', scales=[(400, 4200), (500, 4200), (600, 4200)], keep_ratio=True),
             dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600), allow_negative_crop=True),
             dict(type='RandomChoiceResize', scales=SHORT_EDGES, keep_ratio=True)]]),
        dict(type='PackDetInputs')], 'common/data/coco_detr.py (4200: mmdet\'s cap, documented)'),
    'test_dataloader.dataset.pipeline.1': (dict(type='Resize', scale=(1333, 800), keep_ratio=True),
                                           'common/data/coco_detr.py'),
}
# dino-convnext/*.py: size -> (depths, dims, init_checkpoint), and the published box AP (projects/dino/README.md)
SIZES = {
    't': ([3, 3, 9, 3], [96, 192, 384, 768], 'convnext_tiny_22k_1k_384.pth', 52.4),
    's': ([3, 3, 27, 3], [96, 192, 384, 768], 'convnext_small_22k_1k_384.pth', 54.2),
    'b': ([3, 3, 27, 3], [128, 256, 512, 1024], 'convnext_base_22k_1k_384.pth', 55.1),
    'l': ([3, 3, 27, 3], [192, 384, 768, 1536], 'convnext_large_22k_1k_384.pth', 55.5),
}
DINOV3 = {'b': 'dinov3_convnext_base_pretrain_lvd1689m-801f2ba9.pth',
          'l': 'dinov3_convnext_large_pretrain_lvd1689m-61fa432d.pth'}
NAMES = [f'dino_convnext_{s}_384_4scale_12ep' for s in SIZES] + [
    f'dino_dinov3_convnext_{s}_4scale_12ep' for s in DINOV3]


def load(name: str) -> Config:
    return read_config(CONFIGS / f'{name}.py')


def at(cfg: dict, path: str):
    """The value at a dotted path (list indices as numbers); AdamW's own default where the config leaves it."""
    value = cfg
    for part in path.split('.'):
        if isinstance(value, list):
            value = value[int(part)]
        elif part in value:
            value = value[part]
        else:
            assert path == 'optim_wrapper.optimizer.betas', path
            return inspect.signature(torch.optim.AdamW).parameters['betas'].default
    return value


def test_every_dino_config_is_covered():
    assert {p.stem for p in CONFIGS.glob('dino_*.py')} == set(NAMES)


@pytest.mark.parametrize('name', NAMES)
def test_config_is_detrex_recipe(name):
    cfg = unscoped(load(name).to_dict())
    mismatches = {path: (at(cfg, path), value, source) for path, (value, source) in DETREX.items()
                  if at(cfg, path) != value}
    assert not mismatches
    size = name.split('_')[3 if 'dinov3' in name else 2]
    depths, dims, weights, _ = SIZES[size]
    backbone = cfg['model']['backbone']
    assert backbone['type'] == 'convnext_dense.ConvNeXt'
    assert resolve_arch(backbone['arch']) == (tuple(depths), tuple(dims))
    assert cfg['model']['neck']['in_channels'] == dims[1:]  # the dino-convnext files' neck input_shapes
    assert os.path.basename(backbone['init_cfg']['checkpoint']) == (DINOV3[size] if 'dinov3' in name else weights)
    assert backbone.get('frozen_stages', -1) == -1 and not backbone.get('with_cp', False)
    assert cfg['train_dataloader']['batch_size'] * 8 == 16  # 8 GPUs x 2: detrex's total_batch_size


def test_config_inherits_mmdets_dino_recipe():
    """Field by field mmdet's dino-4scale_r50_8xb2-12e_coco.py but for the backbone, what detrex sets otherwise (the
    DETREX values above) and our loops, hooks and data root."""
    theirs = unscoped(Config.fromfile(MMDET_DINO).to_dict())
    ours = unscoped(load('dino_convnext_t_384_4scale_12ep').to_dict())
    assert ours.pop('custom_imports') == dict(imports=['convnext_dense'], allow_failed_imports=False)
    assert theirs['model'].pop('backbone')['type'] == 'ResNet'
    ours['model'].pop('backbone')
    for model in (ours['model'], theirs['model']):
        model['neck'].pop('in_channels')
    assert (ours['model']['neck'].pop('bias'), ours['model'].pop('positional_encoding')) == (
        True, dict(num_feats=128, normalize=True, offset=-0.5, temperature=10000))
    assert theirs['model'].pop('positional_encoding') == dict(num_feats=128, normalize=True, offset=0.0, temperature=20)
    assert ours['optim_wrapper']['paramwise_cfg'].pop('norm_decay_mult') == 0.0
    filters = [cfg['train_dataloader']['dataset'].pop('filter_cfg') for cfg in (ours, theirs)]
    assert filters == [dict(filter_empty_gt=True, min_size=32), dict(filter_empty_gt=False, min_size=32)]
    assert ours.pop('custom_hooks') == ours.pop('reliability_hooks') and 'custom_hooks' not in theirs
    pop_checked_loops_and_checkpoint_hook(ours, theirs)
    for name in ('arch', 'convnext'):
        ours.pop(name)
    assert ours == theirs


@pytest.mark.parametrize('size', DINOV3)
def test_dinov3_config_is_the_imagenet_recipe_but_for_the_weights(size):
    ours = load(f'dino_dinov3_convnext_{size}_4scale_12ep').to_dict()
    imagenet = load(f'dino_convnext_{size}_384_4scale_12ep').to_dict()
    for cfg in (ours, imagenet):
        cfg['model']['backbone'].pop('init_cfg')
    assert ours == imagenet


# ----------------------------------------------------------------------------------------------------------------
# The shrunk recipe through mmdet's tools/train.py and tools/test.py and our tools/infer.py
# ----------------------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """One training run (an epoch of 2 iterations from an official-layout backbone file), then, from its checkpoint,
    mmdet's test tool in a process of its own while tools/infer.py runs in this one (as python runs it; a third
    process start would cost the suite seconds of imports): {name: output or exit code}, and the folders."""
    root = tmp_path_factory.mktemp('dino')
    write_coco_demo(str(root / 'coco'), num_train=4, num_val=2, seed=0, size=64)
    source = ConvNeXt(dict(depths=(1, 1, 1, 1), channels=(16, 32, 64, 128)), layer_scale_init_value=1.0)
    official = {k: v for k, v in source.state_dict().items() if not k.startswith('norm')}  # + the classifier's
    official.update({'norm.weight': torch.ones(128), 'norm.bias': torch.zeros(128), 'head.weight': torch.zeros(4, 128),
                     'head.bias': torch.zeros(4)})
    torch.save({'model': official}, root / 'convnext_official.pth')
    paths = dict(COCO_ROOT=f'{root / "coco"}/', CONVNEXT_PRETRAINED=str(root / 'convnext_official.pth'))
    env = dict(os.environ, **paths)
    train = tool(str(stock_tool('mmdet', 'train.py')), str(TINY_DINO), '--work-dir', str(root / 'train'), env=env)
    train.wait(timeout=300)
    found = dict(root=root, train=output(train), train_rc=train.returncode)
    checkpoint = str(root / 'train' / 'epoch_1.pth')
    test = tool(str(stock_tool('mmdet', 'test.py')), str(TINY_DINO), checkpoint, '--work-dir', str(root / 'test'),
                env=env)
    argv = ['tools/infer.py', str(TINY_DINO), checkpoint, str(root / 'coco' / 'val2017'), '--out-dir',
            str(root / 'infer'), '--score-thr', '0']
    with mock.patch.object(sys, 'argv', argv), mock.patch.dict(os.environ, paths):
        try:
            runpy.run_path(str(REPO / 'tools' / 'infer.py'), run_name='__main__')
            found['infer_rc'] = 0
        except SystemExit as e:
            found['infer_rc'] = e.code
    test.wait(timeout=300)
    found['test'], found['test_rc'] = output(test), test.returncode
    return found


def test_shrunk_recipe_trains_through_mmdets_train_tool(runs):
    """The official-layout backbone file loads, our loops and hooks run (the data check first), two iterations log
    DINO's matching, denoising and encoder losses, and the epoch ends in COCO bbox evaluation."""
    log = runs['train']
    assert runs['train_rc'] == 0, log[-3000:]
    assert 'loaded 52/58 backbone tensors' in log and '(official layout' in log
    assert re.search(r'DatasetCheckHook\s', log) and 'CheckedEpochBasedTrainLoop' in log
    for i in (1, 2):
        line = re.search(rf'Epoch\(train\) +\[1\]\[{i}/2\].*', log).group()
        for key in ('loss_cls', 'loss_bbox', 'loss_iou', 'dn_loss_cls', 'enc_loss_cls', 'd0.loss_cls'):
            assert re.search(rf' {re.escape(key)}: [0-9.]+', line), (key, line)
    assert re.search(r'Epoch\(val\) \[1\]\[1/1\] +coco/bbox_mAP: [0-9.]+', log), log[-3000:]
    assert (runs['root'] / 'train' / 'epoch_1.pth').is_file()


def test_shrunk_recipe_tests_through_mmdets_test_tool(runs):
    assert runs['test_rc'] == 0, runs['test'][-3000:]
    found = re.search(r'Epoch\(test\) \[1/1\] +coco/bbox_mAP: ([0-9.]+)', runs['test'])
    assert found and 0.0 <= float(found.group(1)) <= 1.0


def test_shrunk_recipe_infers_through_our_infer_tool(runs):
    """Every val image gets a drawing and a JSON of max_per_img (20) boxes inside the 64 px image."""
    assert runs['infer_rc'] in (0, None)
    preds = sorted((runs['root'] / 'infer' / 'preds').glob('*.json'))
    assert len(preds) == 2 and len(list((runs['root'] / 'infer' / 'vis').glob('*.png'))) == 2
    for path in preds:
        pred = json.loads(path.read_text())
        assert len(pred['bboxes']) == len(pred['scores']) == len(pred['labels']) == 20
        boxes = torch.tensor(pred['bboxes'])
        assert boxes.min() >= 0 and boxes.max() <= 64 and set(pred['labels']) <= set(range(4))


# ----------------------------------------------------------------------------------------------------------------
# The optimizer: the recipe's (mmengine's constructor) and ours, parameter by parameter
# ----------------------------------------------------------------------------------------------------------------

def test_layer_decay_constructor_gives_dino_what_the_stock_constructor_gives_it():
    """On the shrunk DINO model: the recipe's optimizer (mmengine's default constructor) gives detrex's rule (lr 0.1x
    for the backbone, weight decay on all of it; no decay on the neck's and transformer's norms; decay on the rest,
    queries and level embeddings included); our layer-decay constructor with ``outside_backbone='mmengine'`` gives
    every parameter outside the backbone exactly that, and the backbone the official rule at lr 0.1x."""
    from mmdet.registry import MODELS
    cfg = read_config(TINY_DINO)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    stock = named_options(build_optim_wrapper(model, cfg.optim_wrapper), model)
    lr, wd = cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay
    norms = {f'{name}.{p}' for name, m in model.named_modules()
             if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)) and not name.startswith('backbone.')
             for p in ('weight', 'bias')}
    assert {'neck.convs.0.gn.weight', 'memory_trans_norm.bias', 'decoder.norm.weight',
            'encoder.layers.0.norms.1.weight'} <= norms
    for name, options in stock.items():
        expected = (lr * 0.1, wd) if name.startswith('backbone.') else (lr, 0.0) if name in norms else (lr, wd)
        assert options == pytest.approx(expected), name
    for name in ('query_embedding.weight', 'level_embed', 'dn_query_generator.label_embedding.weight'):
        assert stock[name] == (lr, wd)  # detectron2's get_default_optimizer_params decays embeddings too
    ours_cfg = cfg.optim_wrapper.copy()
    ours_cfg.constructor = 'convnext_dense.ConvNeXtLayerDecayOptimizerConstructor'
    ours_cfg.paramwise_cfg = dict(cfg.optim_wrapper.paramwise_cfg, decay_rate=1.0, outside_backbone='mmengine')
    ours = named_options(build_optim_wrapper(model, ours_cfg), model)
    assert {n: v for n, v in ours.items() if not n.startswith('backbone.')} == {
        n: v for n, v in stock.items() if not n.startswith('backbone.')}
    for name, p in model.named_parameters():
        if name.startswith('backbone.'):
            assert ours[name] == pytest.approx((lr * 0.1, 0.0 if p.ndim == 1 or name.endswith('.bias') else wd)), name


# ----------------------------------------------------------------------------------------------------------------
# detrex's trained DINO files: a whole-model layout
# ----------------------------------------------------------------------------------------------------------------

# mmdet's DINO name -> detrex's (projects/dino/modeling/, detrex/layers/, detrex/modeling/neck/channel_mapper.py):
# the inverse of convnext_dense/checkpoint/detrex_dino.py, written out again on purpose
TO_DETREX = (
    (r'^level_embed$', 'transformer.level_embeds'),
    (r'^query_embedding\.', 'transformer.tgt_embed.'),
    (r'^memory_trans_fc\.', 'transformer.enc_output.'),
    (r'^memory_trans_norm\.', 'transformer.enc_output_norm.'),
    (r'^(encoder|decoder)\.layers\.(\d+)\.self_attn\.', r'transformer.\1.layers.\2.attentions.0.'),
    (r'^decoder\.layers\.(\d+)\.cross_attn\.', r'transformer.decoder.layers.\1.attentions.1.'),
    (r'^(encoder|decoder)\.layers\.(\d+)\.ffn\.', r'transformer.\1.layers.\2.ffns.0.'),
    (r'^(encoder|decoder)\.layers\.(\d+)\.norms\.', r'transformer.\1.layers.\2.norms.'),
    (r'^decoder\.', 'transformer.decoder.'),
    (r'^bbox_head\.cls_branches\.', 'class_embed.'),
    (r'^bbox_head\.reg_branches\.(\d+)\.(\d+)\.', lambda m: f'bbox_embed.{m[1]}.layers.{int(m[2]) // 2}.'),
    (r'^dn_query_generator\.label_embedding\.', 'label_enc.'),
    (r'^neck\.(\w+)\.(\d+)\.gn\.', r'neck.\1.\2.norm.'),
)


def detrex_file(state: dict) -> dict:
    """A detrex DINO state dict with the tensors of an mmdet DINO ``state``, the heads also under the decoder (detrex
    shares the modules, so its state dict holds them twice)."""
    out = {}
    for key, tensor in state.items():
        for pattern, replacement in TO_DETREX:
            if re.match(pattern, key):
                key = re.sub(pattern, replacement, key)
                break
        out[key] = tensor
        if key.startswith(('class_embed.', 'bbox_embed.')):
            out['transformer.decoder.' + key] = tensor
    return out


@pytest.mark.parametrize('container', [None, 'model'])
def test_detrex_dino_file_loads_strictly_into_the_recipes_model(tmp_path, container):
    """A file with detrex's names and shapes (flat, or under detectron2's 'model') loads through mmengine's
    load_checkpoint with strict=True into the shrunk recipe's DINO, every tensor in its place."""
    from mmdet.registry import MODELS
    from mmengine.runner import load_checkpoint
    cfg = read_config(TINY_DINO)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        source, target = (MODELS.build(copy.deepcopy(cfg.model)) for _ in range(2))  # DINO edits the dict it gets
    gen = torch.Generator().manual_seed(0)
    state = {k: torch.randn(v.shape, generator=gen) for k, v in source.state_dict().items()}
    detrex = detrex_file(state)
    assert {'transformer.decoder.layers.1.attentions.1.sampling_offsets.weight', 'bbox_embed.2.layers.2.bias',
            'neck.extra_convs.0.norm.weight', 'backbone.stages.3.0.gamma'} <= set(detrex)
    torch.save({container: detrex, 'iteration': 89999} if container else detrex, tmp_path / 'detrex.pth')
    load_checkpoint(target, str(tmp_path / 'detrex.pth'), strict=True)
    loaded = target.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)


def test_detrex_dino_key_without_a_place_is_named():
    from convnext_dense.checkpoint.detrex_dino import detrex_dino_to_mmdet
    from convnext_dense.utils.errors import CheckpointError
    state = {k: torch.zeros(1) for k in ('transformer.level_embeds', 'transformer.tgt_embed.weight',
                                         'label_enc.weight', 'transformer.encoder.post_norm_layer.weight')}
    with pytest.raises(CheckpointError, match=r"'transformer\.encoder\.post_norm_layer\.weight'"):
        detrex_dino_to_mmdet(state)
