"""Mask2Former + ConvNeXt to Hugging Face transformers (``Mask2FormerForUniversalSegmentation``): mmseg's semantic
and mmdet's instance and panoptic recipes, shrunk (``tests/configs/tiny_m2f_{seg,ins,pan}.py``), randomised (every
parameter, no BatchNorm in the head), exported, read back with ``from_pretrained(output_loading_info=True)``.

The structures map one to one: the same parameter count; the names read back to ours (q / k / v joined into
``in_proj_weight``). The last decoder layer's class and mask logits agree to 1e-3 of their largest value for all
but a tiny fraction of elements: the masked attention thresholds ``sigmoid < 0.5``, so a mask logit within rounding
of 0 can flip one pixel of one query's attention mask (the test prints how often a mask pixel flips sign).
"""
from pathlib import Path
from typing import Dict, Tuple

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.runner import load_checkpoint
from mmseg.structures import SegDataSample
from test_hf_export import export_randomised, image, no_hub_kernels, off_init  # noqa: F401  (no_hub_kernels: autouse here too)
from torch import nn

from conftest import REPO, read_config
from convnext_dense.checkpoint.hf_mask2former import EMPTY_WEIGHT, mask2former_from_hf
from convnext_dense.tools.cli import build_model
from convnext_dense.tools.export_hf import export_hf, mask2former_head
from convnext_dense.tools.infer import build_inferencer

transformers = pytest.importorskip('transformers')
CONFIGS = {task: REPO / 'tests' / 'configs' / f'tiny_m2f_{task}.py' for task in ('seg', 'ins', 'pan')}
TOLERANCE, FRACTION = 1e-3, 1e-3  # of the largest logit; of the elements allowed beyond it


@pytest.fixture(scope='module')
def exported(tmp_path_factory) -> Dict[str, Tuple[Path, nn.Module]]:
    """Per task: our shrunk Mask2Former randomised, its checkpoint exported to ROOT/hf."""
    return export_randomised(CONFIGS, tmp_path_factory, seed=5)


@pytest.mark.parametrize('task', CONFIGS)
def test_mask2former_export(exported, task):
    root, ours = exported[task]
    cfg = read_config(CONFIGS[task])
    hf_model, info = transformers.Mask2FormerForUniversalSegmentation.from_pretrained(root / 'hf',
                                                                                      output_loading_info=True)
    assert {k: v for k, v in info.items() if v} == {}, info
    head_name = mask2former_head(cfg)
    head = getattr(ours, head_name)
    assert sum(p.numel() for p in hf_model.parameters()) == sum(p.numel() for p in ours.parameters())
    assert hf_model.config.decoder_layers == len(head.transformer_decoder.layers) + 1
    assert hf_model.state_dict()[EMPTY_WEIGHT].tolist() == pytest.approx(head.class_weight)
    back = mask2former_from_hf(hf_model.state_dict(), head_name + '.')
    assert back.keys() == ours.state_dict().keys()
    assert all(torch.equal(back[k], v) for k, v in ours.state_dict().items())

    x = image(4, (64, 96))
    sample = (SegDataSample if task == 'seg' else DetDataSample)(metainfo=dict(
        batch_input_shape=(64, 96), img_shape=(64, 96), pad_shape=(64, 96), ori_shape=(64, 96)))
    with torch.no_grad():
        cls_scores, mask_preds = head(ours.backbone(x), [sample])
        theirs = hf_model.eval()(pixel_values=x)
    for name, mine, hf in (('class', cls_scores[-1], theirs.class_queries_logits),
                           ('mask', mask_preds[-1], theirs.masks_queries_logits)):
        assert mine.shape == hf.shape, name
        beyond = ((mine - hf).abs() > TOLERANCE * hf.abs().max()).float().mean().item()
        assert beyond <= FRACTION, (name, beyond)
        print(f'{task} {name}: max abs diff {(mine - hf).abs().max():.2e} of max |logit| {hf.abs().max():.2f}; '
              f'{beyond:.2e} beyond 1e-3 of max' + (f'; sign flips {((mine > 0) != (hf > 0)).float().mean():.2e}'
                                                    if name == 'mask' else ''))


def test_hf_mask2former_loads_into_mmdet_config(exported, tmp_path):
    """transformers' Mask2Former (the instance recipe's structure), off its init, saved with save_pretrained, loads
    into mmdet's model as the folder (strict); the last layer's logits equal."""
    ours = build_model(read_config(CONFIGS['ins']))
    hf_model = off_init(transformers.Mask2FormerForUniversalSegmentation.from_pretrained(exported['ins'][0] / 'hf'),
                        seed=7)
    hf_model.save_pretrained(tmp_path / 'hf')
    load_checkpoint(ours, str(tmp_path / 'hf'), map_location='cpu', strict=True, logger='silent')
    x = image(5, (64, 96))
    with torch.no_grad():
        cls_scores, mask_preds = ours.panoptic_head(ours.backbone(x), [DetDataSample(metainfo=dict(
            batch_input_shape=(64, 96), img_shape=(64, 96), pad_shape=(64, 96)))])
        theirs = hf_model(pixel_values=x)
    for mine, hf in ((cls_scores[-1], theirs.class_queries_logits), (mask_preds[-1], theirs.masks_queries_logits)):
        assert ((mine - hf).abs() > TOLERANCE * hf.abs().max()).float().mean().item() <= FRACTION


def test_hf_mask2former_loads_into_mmsegs_semantic_recipe(exported, tmp_path):
    """transformers' Mask2Former files read as mmdet's model (``panoptic_head``); our inferencer (tools/infer.py), as
    the runner's CheckpointFitHook, names the head as mmseg's semantic model does (``decode_head``): every tensor
    lands."""
    hf_model = off_init(transformers.Mask2FormerForUniversalSegmentation.from_pretrained(exported['seg'][0] / 'hf'),
                        seed=9)
    hf_model.save_pretrained(tmp_path / 'hf')
    model = build_inferencer(str(CONFIGS['seg']), str(tmp_path / 'hf')).model
    expected = mask2former_from_hf(hf_model.state_dict(), 'decode_head.')
    assert model.state_dict().keys() == expected.keys()
    assert all(torch.equal(value, expected[key]) for key, value in model.state_dict().items())


def test_hf_mask2former_exports_from_mmsegs_semantic_recipe(exported, tmp_path):
    """tools/export_hf.py reads a transformers Mask2Former folder with mmseg's semantic config (the head renamed from
    mmdet's ``panoptic_head`` to ``decode_head``) and writes it back tensor for tensor."""
    hf_model = off_init(transformers.Mask2FormerForUniversalSegmentation.from_pretrained(exported['seg'][0] / 'hf'),
                        seed=11)
    hf_model.save_pretrained(tmp_path / 'hf')
    again = export_hf(str(CONFIGS['seg']), str(tmp_path / 'hf'), str(tmp_path / 'again'))
    assert again.state_dict().keys() == hf_model.state_dict().keys()
    assert all(torch.equal(value, hf_model.state_dict()[key]) for key, value in again.state_dict().items())
