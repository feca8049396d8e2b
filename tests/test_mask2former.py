"""Mask2Former + ConvNeXt: each of the nine recipes is its stock mmdet / mmseg Swin file field by field but for the
differences its docstring lists, and the layer-decay constructor gives the head what the stock recipe gives it."""
import os
from pathlib import Path
from unittest import mock

import mmdet
import mmseg
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from test_coco import unscoped

from conftest import REPO, read_config
from convnext_dense import output_shape

pytestmark = pytest.mark.usefixtures('default_paths')  # the default data roots are the stock ones

STOCK = {'mmdet': Path(mmdet.__file__).parent / '.mim/configs/mask2former',
         'mmseg': Path(mmseg.__file__).parent / '.mim/configs/mask2former'}
# ours: (toolkit, the stock file it follows, arch, weights file), typed here again on purpose (the table)
RECIPES = {
    'ade20k/mask2former_convnext_t_512': (
        'mmseg', 'mask2former_swin-t_8xb2-160k_ade20k-512x512', 'tiny', 'convnext_tiny_1k_224.pth'),
    'ade20k/mask2former_convnext_s_512': (
        'mmseg', 'mask2former_swin-s_8xb2-160k_ade20k-512x512', 'small', 'convnext_small_1k_224.pth'),
    'ade20k/mask2former_convnext_b_640_in22k': (
        'mmseg', 'mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640', 'base', 'convnext_base_22k_224.pth'),
    'ade20k/mask2former_convnext_l_640_in22k': (
        'mmseg', 'mask2former_swin-l-in22k-384x384-pre_8xb2-160k_ade20k-640x640', 'large',
        'convnext_large_22k_224.pth'),
    'coco/mask2former_convnext_t_instance': (
        'mmdet', 'mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco', 'tiny', 'convnext_tiny_1k_224.pth'),
    'coco/mask2former_convnext_s_instance': (
        'mmdet', 'mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco', 'small', 'convnext_small_1k_224.pth'),
    'coco/mask2former_convnext_t_panoptic': (
        'mmdet', 'mask2former_swin-t-p4-w7-224_8xb2-lsj-50e_coco-panoptic', 'tiny', 'convnext_tiny_1k_224.pth'),
    'coco/mask2former_convnext_b_panoptic_in22k': (
        'mmdet', 'mask2former_swin-b-p4-w12-384-in21k_8xb2-lsj-50e_coco-panoptic', 'base',
        'convnext_base_22k_224.pth'),
    'coco/mask2former_convnext_l_panoptic_in22k': (
        'mmdet', 'mask2former_swin-l-p4-w12-384-in21k_16xb1-lsj-100e_coco-panoptic', 'large',
        'convnext_large_22k_224.pth'),
}
SWIN_KEYS = ('patch_embed', 'backbone.norm', 'backbone.stages', 'pos_embed', 'relative_position_bias_table')
QUERY_KEYS = ('query_embed', 'query_feat', 'level_embed')


def stock(name: str) -> Config:
    toolkit, file, _, _ = RECIPES[name]
    return Config.fromfile(STOCK[toolkit] / f'{file}.py', import_custom_modules=False)


def test_every_mask2former_config_is_covered():
    shipped = {str(p.relative_to(REPO / 'configs'))[:-3] for p in (REPO / 'configs').glob('[!_]*/mask2former_*.py')}
    assert shipped == set(RECIPES)


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_config_is_the_stock_swin_recipe_but_for_the_backbone(name):
    toolkit, _, arch, weights = RECIPES[name]
    ours = unscoped(read_config(REPO / 'configs' / f'{name}.py').to_dict())
    theirs = unscoped(stock(name).to_dict())
    stock_imports = theirs.pop('custom_imports', dict(imports=[]))['imports']
    stock_imports = [stock_imports] if isinstance(stock_imports, str) else stock_imports  # mmseg's: 'mmdet.models'
    assert ours.pop('custom_imports') == dict(imports=stock_imports + ['convnext_dense'], allow_failed_imports=False)
    # the backbone at the paired size, the stock drop path, our weights file
    swin = theirs['model'].pop('backbone')
    assert swin['type'] == 'SwinTransformer' and swin['out_indices'] == (0, 1, 2, 3)
    assert ours['model'].pop('backbone') == dict(
        type='convnext_dense.ConvNeXt', arch=arch, out_indices=(0, 1, 2, 3), drop_path_rate=swin['drop_path_rate'],
        layer_scale_init_value=1.0, init_cfg=dict(type='Pretrained', checkpoint=f'checkpoints/{weights}'))
    assert (ours.pop('pretrained'), os.path.basename(theirs.pop('pretrained'))[:4]) == (
        f'checkpoints/{weights}', 'swin')
    head = 'decode_head' if toolkit == 'mmseg' else 'panoptic_head'
    assert ours['model'][head].pop('in_channels') == list(output_shape(arch).channels)
    assert theirs['model'][head].pop('in_channels') == [swin['embed_dims'] * 2**i for i in range(4)]
    # the stock paramwise settings less the keys that name Swin's parameters, under our constructor
    assert ours['optim_wrapper'].pop('constructor') == 'convnext_dense.ConvNeXtLayerDecayOptimizerConstructor'
    stock_paramwise = theirs['optim_wrapper'].pop('paramwise_cfg')
    assert ours['optim_wrapper'].pop('paramwise_cfg') == dict(
        decay_rate=1.0, outside_backbone='mmengine', norm_decay_mult=stock_paramwise['norm_decay_mult'],
        custom_keys={k: v for k, v in stock_paramwise['custom_keys'].items() if not any(s in k for s in SWIN_KEYS)})
    if name.endswith('_instance'):  # the panoptic base's data_prefix.seg, which CocoDataset does not read
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            assert theirs[loader]['dataset']['data_prefix'].pop('seg').startswith('annotations/panoptic_')
    # our guarantees
    assert ours.pop('custom_hooks') == ours.pop('reliability_hooks') and 'custom_hooks' not in theirs
    assert ours['default_hooks']['checkpoint'].pop('type') == ours.pop('checkpoint_hook')['type']
    assert theirs['default_hooks']['checkpoint'].pop('type') == 'CheckpointHook'
    ours.pop('epoch_train_loop')  # reliability_hooks.py's name for epoch-based schedules: unused here
    for key, loop, stock_loop in (('train_cfg', 'iter_train_loop', 'IterBasedTrainLoop'),
                                  ('val_cfg', 'val_loop', 'ValLoop'), ('test_cfg', 'test_loop', 'TestLoop')):
        assert (ours[key].pop('type'), theirs[key].pop('type')) == (ours.pop(loop), stock_loop)  # mmengine's, checked
    # our named values, and the Swin recipes' own variables (depths, key tables) that only Swin's keys read
    for key in ('arch', 'convnext_backbone', 'convnext_query_multi', 'convnext_paramwise_cfg'):
        ours.pop(key)
    for key in ('depths', 'custom_keys'):
        ours.pop(key, None), theirs.pop(key, None)
    assert ours == theirs


def named_options(wrapper, model) -> dict:
    """{parameter name: (lr, weight_decay)} from the optimizer's groups."""
    by_id = {id(p): (g['lr'], g['weight_decay']) for g in wrapper.optimizer.param_groups for p in g['params']}
    return {name: by_id[id(p)] for name, p in model.named_parameters()}


@pytest.mark.parametrize('name, scope', [('ade20k/mask2former_convnext_t_512', 'mmseg')])
def test_constructor_gives_the_head_what_the_stock_recipe_gives_it(name, scope):
    """On the recipe's real T model (mmseg's head subclasses mmdet's; the shrunk runs check both toolkits' tables):
    outside the backbone every parameter gets the lr and weight decay of the stock recipe's optimizer (mmengine's
    default constructor with the stock Swin paramwise_cfg); inside, lr 0.1x and no decay on 1-D parameters and
    biases; the logged table names the queries and level embeddings."""
    __import__(f'{scope}.registry')
    from mmengine.registry import MODELS
    cfg = read_config(REPO / 'configs' / f'{name}.py')
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope(scope), mock.patch.multiple(
            torch.nn.init, **{f: lambda t, *a, **k: t for f in ('uniform_', 'normal_', 'xavier_uniform_')}):
        model = MODELS.build(cfg.model)
    with mock.patch('convnext_dense.engine.optimizers.layer_decay_optimizer_constructor.print_log') as log:
        ours = named_options(build_optim_wrapper(model, cfg.optim_wrapper), model)
    theirs = named_options(build_optim_wrapper(model, stock(name).optim_wrapper), model)
    lr, wd = cfg.optim_wrapper.optimizer.lr, cfg.optim_wrapper.optimizer.weight_decay
    head = {n: v for n, v in ours.items() if not n.startswith('backbone.')}
    assert head == {n: theirs[n] for n in head}
    assert {v for n, v in head.items() if n.split('.')[1] in QUERY_KEYS} == {(lr, 0.0)}
    assert {(lr, wd), (lr, 0.0)} == set(head.values())  # the decoder's biases are decayed, its norms not
    for n, p in model.named_parameters():
        if n.startswith('backbone.'):
            assert ours[n] == (pytest.approx(lr * 0.1), 0.0 if p.ndim == 1 or n.endswith('.bias') else wd), n
    table = log.call_args.args[0]
    for key in QUERY_KEYS:
        row = next(line for line in table.splitlines() if f'.{key} ' in line).split()
        assert (float(row[2]), float(row[3])) == (1.0, 0.0), table
    assert any(line.split()[1] == 'backbone' and float(line.split()[2]) == pytest.approx(0.1)
               for line in table.splitlines()[2:]), table
