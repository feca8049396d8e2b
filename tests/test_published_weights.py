"""The published trained weights (the metafiles' ``Weights``) load into their recipes with every key matched.

The official files are mmdet 2.x Cascade Mask R-CNN / Mask R-CNN and mmseg 0.x UperNet checkpoints. Each test writes a
file of that family's layout, as mmdet 2.x / mmseg 0.x save it (``meta`` with the 2.x fields, ``state_dict``,
``optimizer``): the backbone from the official formulation's own module (``testing.official``), the neck and heads
from the key table below, written from the official configs (Shared4Conv1FCBBoxHead with SyncBN in three cascade
stages, FCNMaskHead per stage, FPN; UPerHead with its PSP, FCNHead as auxiliary), not from our model. mmdet 3.x and
mmseg 1.x kept these module names, so the file loads into a tiny copy of the recipe with mmengine's
``load_checkpoint(strict=True)`` through our loader: nothing missing, nothing unexpected, the fit check silent.
"""
from typing import Dict, List

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from conftest import REPO, TINY, read_config
from convnext_dense.checkpoint.fit import check_checkpoint_fits
from convnext_dense.testing.official import OfficialConvNeXt

BN = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
WB = ('weight', 'bias')
SHRINK = {256: 16, 512: 16, 1024: 32}  # head widths: the key layout is what is tested, not the sizes
WIDTHS = ('out_channels', 'feat_channels', 'conv_out_channels', 'fc_out_channels', 'channels')


def _keys(prefix: str, *parts: str, params=WB) -> List[str]:
    return [f'{prefix}.{part}.{p}' for part in parts for p in params]


def cascade_2x_keys() -> List[str]:
    """mmdet 2.x Cascade Mask R-CNN (the official 4conv1fc config) outside the backbone."""
    keys = _keys('neck', *[f'{kind}.{i}.conv' for kind in ('lateral_convs', 'fpn_convs') for i in range(4)])
    keys += _keys('rpn_head', 'rpn_conv', 'rpn_cls', 'rpn_reg')
    for stage in range(3):
        box = f'roi_head.bbox_head.{stage}'
        keys += [f'{box}.shared_convs.{i}.conv.weight' for i in range(4)]  # no bias: SyncBN follows
        keys += _keys(box, *[f'shared_convs.{i}.bn' for i in range(4)], params=BN)
        keys += _keys(box, 'shared_fcs.0', 'fc_cls', 'fc_reg')
        keys += _keys(f'roi_head.mask_head.{stage}', *[f'convs.{i}.conv' for i in range(4)], 'upsample', 'conv_logits')
    return keys


def upernet_0x_keys() -> List[str]:
    """mmseg 0.x UperNet with an FCN auxiliary head (the official upernet_convnext.py) outside the backbone."""
    convs = [f'psp_modules.{i}.1' for i in range(4)] + ['bottleneck', 'fpn_bottleneck']
    convs += [f'{kind}.{i}' for kind in ('lateral_convs', 'fpn_convs') for i in range(3)]
    keys = [f'decode_head.{c}.conv.weight' for c in convs] + _keys('decode_head', *[f'{c}.bn' for c in convs],
                                                                    params=BN)
    keys += _keys('decode_head', 'conv_seg') + ['auxiliary_head.convs.0.conv.weight']
    return keys + _keys('auxiliary_head', 'convs.0.bn', params=BN) + _keys('auxiliary_head', 'conv_seg')


def shrink(node: object) -> None:
    """Narrow the heads of a model config in place (``SHRINK``)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in (*WIDTHS, 'in_channels') and isinstance(value, int) and value in SHRINK:
                node[key] = SHRINK[value]
            else:
                shrink(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            shrink(value)


def tiny_recipe(config: str, toolkit: str) -> torch.nn.Module:
    """The recipe with a TINY backbone (its readers' channels set to TINY's) and narrow heads."""
    cfg = read_config(REPO / 'configs' / config)
    model = cfg.model
    model.backbone.arch, model.backbone.init_cfg = dict(TINY), None
    shrink(model)
    channels = list(TINY['channels'])
    if 'neck' in model:
        model.neck.in_channels = channels
    else:
        model.decode_head.in_channels, model.auxiliary_head.in_channels = channels, channels[2]
    registry = __import__(f'{toolkit}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(toolkit):
        return registry.build(model)


def official_file(model: torch.nn.Module, head_keys: List[str], meta: Dict) -> Dict:
    """A checkpoint as the official code saved it: the official backbone's tensors, the head keys of the table (with
    the model's tensors where it has the key, else a placeholder the strict load reports), meta and optimizer."""
    torch.manual_seed(0)
    backbone = OfficialConvNeXt(TINY['depths'], TINY['channels'], layer_scale_init_value=1.0)
    for param in backbone.parameters():
        torch.nn.init.normal_(param)
    own = model.state_dict()
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state.update({key: torch.randn_like(own[key].float()).to(own[key].dtype) if key in own else torch.zeros(1)
                  for key in head_keys})
    return dict(meta=meta, state_dict=state, optimizer=dict(state={}, param_groups=[dict(lr=1e-4, params=[0])]))


@pytest.mark.parametrize('config, toolkit, keys, meta', [
    ('coco/cascade_convnext_t.py', 'mmdet', cascade_2x_keys,
     dict(mmdet_version='2.11.0', CLASSES=('person', 'bicycle'), epoch=36, iter=1, config='model = dict()')),
    ('ade20k/upernet_convnext_t_512.py', 'mmseg', upernet_0x_keys,
     dict(mmseg_version='0.20.2', CLASSES=('wall', 'building'), PALETTE=[[120, 120, 120], [180, 120, 120]],
          iter=160000, config='model = dict()')),
], ids=['mmdet 2.x cascade', 'mmseg 0.x upernet'])
def test_a_published_file_loads_into_its_recipe_with_every_key_matched(tmp_path, default_paths, config, toolkit,
                                                                      keys, meta):
    model = tiny_recipe(config, toolkit)
    path = tmp_path / 'official.pth'
    saved = official_file(model, keys(), meta)
    torch.save(saved, path)
    load_checkpoint(model, str(path), map_location='cpu', strict=True)  # raises on a missing or unexpected key
    assert sorted(saved['state_dict']) == sorted(model.state_dict())
    for key, value in saved['state_dict'].items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0, msg=key)
    check_checkpoint_fits(model, torch.load(path, weights_only=True), str(path))
