"""Mask2Former + ConvNeXt end to end on CPU through the stock tools: the shrunk ADE20K, COCO instance and COCO
panoptic recipes (``tests/configs/tiny_m2f_{seg,ins,pan}.py``) train two iterations each through mmseg's / mmdet's
own ``tools/train.py`` (mmcv's CPU path of multi-scale deformable attention in the pixel decoder) with our layer-decay
constructor and hooks, are evaluated by their ``tools/test.py`` (mIoU; bbox and segm mAP; PQ) and predict through
our ``tools/infer.py`` and the mm inferencers.

Each model is trained once (the module fixture starts the three runs together, then the three test runs) and its
checkpoint reused. Panoptic needs the ``panopticapi`` module, which no PyPI package provides next to numpy 2 but
``panopticapi-lite`` installed without its dependencies (docs/recipes.md, Mask2Former); without it the panoptic
tests are skipped with that command as the reason, the others run.
"""
import importlib.util
import json
import os
import re
import runpy
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from learning import assert_moved_by_the_steps, train_records
from test_stock_tools import stock_tool

from conftest import REPO, finish, tool
from convnext_dense import output_shape
from convnext_dense.checkpoint import read_checkpoint
from convnext_dense.synthetic import ade
from convnext_dense.synthetic.panoptic import CLASSES as PANOPTIC_CLASSES
from convnext_dense.synthetic.panoptic import id2rgb, write_coco_panoptic_demo
from convnext_dense.synthetic.scenes import SHAPES
from convnext_dense.tools.export_models import PHOTO
from convnext_dense.tools.records import INSTANCE_OFFSET

CONFIGS = {kind: REPO / 'tests' / 'configs' / f'tiny_m2f_{kind}.py' for kind in ('seg', 'ins', 'pan')}
TOOLKIT = dict(seg='mmseg', ins='mmdet', pan='mmdet')
INSTALL = 'pip install --no-deps panopticapi-lite==0.2.0'
PANOPTICAPI = importlib.util.find_spec('panopticapi') is not None
needs_panopticapi = pytest.mark.skipif(not PANOPTICAPI, reason=f'panopticapi is not installed: {INSTALL}')


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """{kind: dict(work=folder, checkpoint=path, train=log, test=log)}, the data roots in the env dict ``env``."""
    root = tmp_path_factory.mktemp('m2f')
    ade.write_ade_demo(str(root / 'ade'), num_train=4, num_val=2, seed=0, size=64)
    write_coco_panoptic_demo(str(root / 'coco'), num_train=4, num_val=2, seed=0, size=64)  # instances too
    env = dict(os.environ, ADE_DEMO_ROOT=str(root / 'ade'), COCO_DEMO_ROOT=f'{root / "coco"}/')
    kinds = [kind for kind in CONFIGS if kind != 'pan' or PANOPTICAPI]
    work = {kind: root / kind for kind in kinds}
    trains = {kind: tool(str(stock_tool(TOOLKIT[kind], 'train.py')), str(CONFIGS[kind]), '--work-dir',
                         str(work[kind]), env=env) for kind in kinds}
    found, tests = {}, {}
    for kind in kinds:  # each test run starts as soon as its model is trained
        found[kind] = dict(work=work[kind], checkpoint=work[kind] / 'iter_2.pth', train=finish(trains[kind]))
        tests[kind] = tool(str(stock_tool(TOOLKIT[kind], 'test.py')), str(CONFIGS[kind]),
                           str(found[kind]['checkpoint']), '--work-dir', str(work[kind] / 'test'), env=env)
    for kind in kinds:
        found[kind]['test'] = finish(tests[kind])
    found['env'] = env
    found['root'] = root
    return found


def logged_table(log: str, head: str) -> dict:
    """{part: {(lr scale, weight decay)}} from the constructor's table in a training log."""
    table = {}
    for part, scale, wd in re.findall(r'^\s+\d+ (\S+)\s+([\d.]+)\s+([\d.]+)\s+\d+\s+[\d,]+$', log, re.M):
        table.setdefault(part, set()).add((float(scale), float(wd)))
    assert any(part.startswith(head) for part in table), log[-3000:]
    return table


@pytest.mark.parametrize('kind', ['seg', 'ins', pytest.param('pan', marks=needs_panopticapi)])
def test_trains_through_the_stock_tool_with_the_recipes_optimizer(runs, kind):
    """Two iterations with finite losses, our hooks, a checkpoint; the logged table gives the head what the stock
    recipe gives it (lr 1x; no decay on queries and level embeddings; decay on the decoder's weights) and the
    backbone 0.1x."""
    log = runs[kind]['train']
    losses = [float(v) for v in re.findall(r'Iter\(train\) \[\d/2\].*?  loss: ([\d.]+)', log)]
    assert len(losses) == 2 and all(np.isfinite(losses)), log[-3000:]
    assert runs[kind]['checkpoint'].is_file()
    head = 'decode_head' if kind == 'seg' else 'panoptic_head'
    table = logged_table(log, head)
    for part in ('query_embed', 'query_feat', 'level_embed'):
        assert table[f'{head}.{part}'] == {(1.0, 0.0)}
    assert table[f'{head}.transformer_decoder'] == table[f'{head}.pixel_decoder'] == {(1.0, 0.0), (1.0, 0.05)}
    assert table['backbone'] == {(0.1, 0.0), (0.1, 0.05)}
    for hook in ('DatasetCheckHook', 'NonFiniteLossHook', 'CheckpointFitHook', 'AtomicCheckpointHook'):
        assert re.search(rf'^\(\w+\s*\) {hook}\s*$', log, re.M), hook  # the runner's table of registered hooks


@pytest.mark.parametrize('kind', ['seg', 'ins', pytest.param('pan', marks=needs_panopticapi)])
def test_training_moves_the_head_by_the_recipes_steps(runs, kind):
    """Learning, not only a loss that exists: every LayerNorm of the head's pixel-decoder encoder and transformer
    decoder (weight 1, bias 0 at init: mmdet's Mask2Former initialises only its matrices) moved in the two
    iterations, the largest by about two Adam steps of the head's learning rate (the base lr: 1x in the table
    above)."""
    records = train_records(runs[kind]['work'])
    assert [r['iter'] for r in records] == [1, 2]
    head = 'decode_head' if kind == 'seg' else 'panoptic_head'
    state = read_checkpoint(runs[kind]['checkpoint'])['state_dict']
    names = [name for name in state if re.fullmatch(
        rf'{head}\.(pixel_decoder\.encoder\.layers\.\d+\.norms\.\d+|transformer_decoder\.layers\.\d+\.norms\.\d+|'
        r'transformer_decoder\.post_norm)\.(weight|bias)', name)]
    assert len(names) == 2 * (2 + 2 * 3 + 1)  # the shrunk head: 1 encoder layer (2 norms), 2 decoder layers (3 each)
    assert_moved_by_the_steps(state, names, sum(r['base_lr'] for r in records))


def test_semantic_evaluates_and_infers(runs, tmp_path, monkeypatch):
    assert re.search(r'mIoU: [\d.]+', runs['seg']['test']) and '|   circle   |' in runs['seg']['test']
    labels = run_infer(runs, 'seg', tmp_path, monkeypatch)[1]
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= set(range(len(ade.CLASSES)))


def test_instance_evaluates_and_infers(runs, tmp_path, monkeypatch):
    log = runs['ins']['test']
    assert re.search(r'coco/bbox_mAP: [\d.]+', log) and re.search(r'coco/segm_mAP: [\d.]+', log), log[-2000:]
    record = run_infer(runs, 'ins', tmp_path, monkeypatch)[0]
    assert record['classes'] == list(SHAPES) and len(record['labels']) == len(record['masks']) <= 8


@needs_panopticapi
def test_panoptic_evaluates_pq_and_infers_the_coco_panoptic_format(runs, tmp_path, monkeypatch):
    log = runs['pan']['test']
    assert re.search(r'coco_panoptic/PQ: [\d.]+', log) and re.search(r'coco/segm_mAP: [\d.]+', log), log[-2000:]
    assert re.search(r'\| Stuff\s+\|', log) and re.search(r'\| Things\s+\|', log)
    record, rgb = run_infer(runs, 'pan', tmp_path, monkeypatch)
    from panopticapi.utils import rgb2id
    ids = rgb2id(rgb[:, :, ::-1])  # cv2 reads BGR
    segments = record['segments_info']
    assert record['classes'] == list(PANOPTIC_CLASSES) and segments
    assert set(np.unique(ids)) - {0} == {s['id'] for s in segments}
    for segment in segments:
        assert segment['area'] == int((ids == segment['id']).sum())
        assert 0 <= segment['category_id'] < len(PANOPTIC_CLASSES)
        assert segment['isthing'] == (PANOPTIC_CLASSES[segment['category_id']] in SHAPES)


def run_infer(runs, kind: str, out: Path, monkeypatch) -> tuple:
    """tools/infer.py run in this process (as python runs it) on a small photo: (the JSON record or None, the PNG)."""
    photo = out / 'photo.jpg'
    cv2.imwrite(str(photo), cv2.resize(cv2.imread(str(PHOTO)), (96, 112), interpolation=cv2.INTER_AREA))
    monkeypatch.setattr(os, 'environ', runs['env'])
    monkeypatch.setattr(sys, 'argv', ['tools/infer.py', str(CONFIGS[kind]), str(runs[kind]['checkpoint']), str(photo),
                                      '--out-dir', str(out / 'out')])
    runpy.run_path(str(REPO / 'tools' / 'infer.py'), run_name='__main__')
    assert (out / 'out' / 'vis' / 'photo.jpg').is_file()
    json_path, png_path = out / 'out' / 'preds' / 'photo.json', out / 'out' / 'preds' / 'photo.png'
    record = json.loads(json_path.read_text()) if json_path.exists() else None
    png = cv2.imread(str(png_path), cv2.IMREAD_UNCHANGED) if png_path.exists() else None
    assert (record is not None) == (kind != 'seg') and (png is not None) == (kind != 'ins')
    expected = (112, 96, 3) if kind == 'pan' else (112, 96)
    assert png is None or png.shape == expected
    return record, png



@pytest.mark.parametrize('kind', ['seg', 'ins', pytest.param('pan', marks=needs_panopticapi)])
def test_the_mm_inferencers_run_the_trained_model(runs, kind, monkeypatch):
    """mmseg's MMSegInferencer / mmdet's DetInferencer themselves, on the recipe's shrunk config and its checkpoint."""
    monkeypatch.setattr(os, 'environ', runs['env'])
    image = cv2.resize(cv2.imread(str(PHOTO)), (96, 112))
    if kind == 'seg':
        from mmseg.apis import MMSegInferencer
        result = MMSegInferencer(model=str(CONFIGS[kind]), weights=str(runs[kind]['checkpoint']), device='cpu')(image)
        assert result['predictions'].shape == (112, 96)
        return
    from mmdet.apis import DetInferencer
    inferencer = DetInferencer(model=str(CONFIGS[kind]), weights=str(runs[kind]['checkpoint']), device='cpu',
                               show_progress=False)
    pred = inferencer(image, return_datasamples=True)['predictions'][0]
    assert pred.pred_instances.masks.shape[1:] == (112, 96)
    if kind == 'pan':
        values = pred.pred_panoptic_seg.sem_seg.unique()
        assert ((values % INSTANCE_OFFSET) <= len(PANOPTIC_CLASSES)).all()


def test_shrunk_configs_read_the_backbone():
    """The shrunk heads' inputs are atto's output_shape, which their shared file types as numbers."""
    from conftest import read_config
    cfg = read_config(REPO / 'tests' / 'configs' / 'm2f_shrink.py')
    assert cfg.m2f_in_channels == list(output_shape(cfg.m2f_backbone.arch).channels)


@needs_panopticapi
def test_panopticapi_reads_our_encoding_under_numpy_2():
    """What mmdet calls in panopticapi (rgb2id, id2rgb, PQStat) works with this numpy, its lite package's pin
    (numpy < 2) notwithstanding, and agrees with the encoding our data and infer.py write."""
    from mmdet.evaluation.functional.panoptic_utils import INSTANCE_OFFSET as MMDET_OFFSET
    from panopticapi.evaluation import PQStat
    from panopticapi.utils import id2rgb as their_id2rgb
    from panopticapi.utils import rgb2id
    assert int(np.__version__.split('.')[0]) >= 2
    ids = np.random.default_rng(0).integers(0, 256**3, size=(7, 9))
    np.testing.assert_array_equal(rgb2id(id2rgb(ids)), ids)
    np.testing.assert_array_equal(their_id2rgb(ids), id2rgb(ids))
    stat = PQStat()
    stat[1].tp, stat[1].iou, stat[2].fp = 2, 1.5, 1
    results, _ = stat.pq_average({1: dict(isthing=1), 2: dict(isthing=0)}, isthing=None)
    assert results['pq'] == pytest.approx((0.75 * 1.0 + 0.0) / 2) and MMDET_OFFSET == INSTANCE_OFFSET
