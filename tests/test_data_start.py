"""A user's COCO-format data against the config's classes, and the annotations mmdet leaves out: said at start-up.

mmdet 3.3 matches the config's ``classes`` with the file's category names and says nothing about a name it does not
find (the heads get a class without data; a whole epoch trains, then ``CocoMetric.results2json`` fails with an
``IndexError``), nor about a box it leaves out (outside its image, under 1 px) or an annotation it marks ignored
(crowd, polygons of under 3 points). ``convnext_dense.datasets.coco_checks`` says each before the first iteration.

The data is ``test_own_data``'s: the demo's COCO data rewritten as a user's 3 categories ('wheel', 'box', 'sail'; ids
7, 3, 12), in the detector template's layout, the template's copies inheriting the tiny test config. The runs go
through mmdet's own ``tools/train.py`` (three processes, started together from one module-scoped fixture): a class
the file lacks, the annotations mmdet leaves out (warned, and the run trains) and the same with
``strict_annotations=True`` (an error). The rest calls the checks and the browse tool's function directly.
"""
import json
import os
import re
import shutil
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, Iterator

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from test_own_data import DET_TEMPLATE, NAMES, TINY_DET, own_coco, user_config
from test_stock_tools import stock_tool

from conftest import finish, last_line, raised, tool
from convnext_dense.datasets import coco_checks
from convnext_dense.datasets.coco_checks import CROWD, DROPPED, POLYGONS, annotation_findings, annotation_warnings
from convnext_dense.datasets.dataset_checks import build_checked_dataset, check_samples, strict_annotations
from convnext_dense.synthetic import panoptic
from convnext_dense.tools.browse_dataset import browse_dataset
from convnext_dense.utils.errors import ConfigError, DataError

TRAIN, VAL = 'annotations/train.json', 'annotations/val.json'
MISSING = ('wheel', 'grape', 'box')  # the case: the missing name is not last, so 'box' would be named 'grape'
EDITS = {  # the index of a training annotation: what the user's converter got wrong
    0: dict(bbox=[100, 10, 20, 20]),  # wholly right of its 64 px image; its area is positive
    1: dict(bbox=[10, 10, 0.5, 20]),  # under 1 px wide
    2: dict(iscrowd=1),
    3: dict(segmentation=[[10, 10, 20, 20]]),  # a polygon of 2 points
}


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def bad_annotations(root: Path) -> None:
    """``EDITS`` applied to the training file, and the validation file left without 'sail'."""
    data = read(root / TRAIN)
    for index, edit in EDITS.items():
        data['annotations'][index].update(edit)
    (root / TRAIN).write_text(json.dumps(data))
    val = read(root / VAL)
    sail = next(c['id'] for c in val['categories'] if c['name'] == 'sail')
    val['annotations'] = [a for a in val['annotations'] if a['category_id'] != sail]
    (root / VAL).write_text(json.dumps(val))


def bad_ids(root: Path) -> Dict[str, list]:
    """The ids of the annotations ``EDITS`` changed, by what mmdet does with them."""
    annotations = read(root / TRAIN)['annotations']
    ids = [annotations[index]['id'] for index in EDITS]
    return {DROPPED: ids[:2], CROWD: ids[2:3], POLYGONS: ids[3:]}


def count(root: Path, split: str) -> int:
    return len(read(root / split)['annotations'])


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> Path:
    return own_coco(tmp_path_factory.mktemp('data_start') / 'coco')


@pytest.fixture(scope='module')
def bad(data) -> Path:
    root = data.parent / 'bad'
    shutil.copytree(data, root)
    bad_annotations(root)
    return root


@pytest.fixture(scope='module')
def runs(data, bad) -> Iterator[Dict[str, Future]]:
    base = data.parent
    clean = {k: v for k, v in os.environ.items() if k not in ('COCO_ROOT', 'DATA_ROOT')}
    train = str(stock_tool('mmdet', 'train.py'))
    own = user_config(DET_TEMPLATE, base / 'own.py', base=TINY_DET, classes=repr(NAMES))
    no_val = ['train_cfg.val_interval=2']  # the val loop is built (and checked), not run: one epoch is trained
    jobs = {  # name: (arguments, data root, succeeds)
        'missing': ([str(user_config(DET_TEMPLATE, base / 'missing.py', base=TINY_DET, classes=repr(MISSING)))],
                    data, False),
        'warned': ([str(own), '--cfg-options', *no_val], bad, True),
        'strict': ([str(own), '--cfg-options', *no_val, 'strict_annotations=True'], bad, False),
    }
    with ThreadPoolExecutor(max_workers=3) as pool:
        yield {name: pool.submit(lambda a=args, r=root, n=name, ok=ok: finish(tool(
            train, *a, '--work-dir', str(base / f'w_{n}'), env=dict(clean, DATA_ROOT=f'{r}/')), ok=ok))
            for name, (args, root, ok) in jobs.items()}


def test_a_class_the_file_lacks_stops_the_run_naming_it_and_the_categories(runs, data):
    out = runs['missing'].result()
    assert re.fullmatch(raised('ConfigError') + re.escape(
        f": train_dataloader.dataset.metainfo.classes: 'grape' is not a category of {data}/{TRAIN}, so the heads "
        "would have a class without data; its categories are ('wheel', 'box', 'sail'): remove or rename it"),
        last_line(out)), last_line(out)
    assert 'Epoch(train)' not in out


def test_annotations_mmdet_leaves_out_are_one_warning_before_the_first_iteration(runs, bad):
    """One line per split, each once, before the first iteration; then the run trains."""
    out = runs['warned'].result()
    ids = {reason: ', '.join(map(str, found)) for reason, found in bad_ids(bad).items()}
    train_line = (f'train_dataloader.dataset: {bad}/{TRAIN}: of {count(bad, TRAIN)} annotations of the classes, mmdet '
                  f'leaves out 2 ({DROPPED}: ids {ids[DROPPED]}) and marks 2 ignored (1 {CROWD}: ids {ids[CROWD]}; 1 '
                  f'{POLYGONS}: ids {ids[POLYGONS]}); strict_annotations=True in the config (or --cfg-options) makes '
                  'this an error')
    val_line = (f"val_dataloader.dataset: {bad}/{VAL} has no annotation mmdet keeps of 1 of the 3 classes: 'sail'")
    first_iteration = out.index('Epoch(train)')
    for line in (train_line, val_line):
        assert out.count(line) == 1, (line, out[:first_iteration][-3000:])
        assert out.index(line) < first_iteration
    assert re.search(r'Epoch\(train\) \[1\]\[4/4\]', out)
    assert 'requires_grad=True to a scalar' not in out  # NonFiniteLossHook reads the losses detached


def test_strict_annotations_makes_them_an_error_before_the_first_iteration(runs, bad):
    out = runs['strict'].result()
    assert re.fullmatch(raised('DataError') + rf': train_dataloader\.dataset: {re.escape(str(bad))}/annotations/'
                        r'train\.json: of \d+ annotations of the classes, mmdet leaves out 2 \(.*\); fix or remove '
                        r'them \(strict_annotations=True\)', last_line(out)), last_line(out)
    assert 'Epoch(train)' not in out


def test_the_counts_are_what_mmdet_does(bad):
    """The rule is mmdet's own, not a copy that could drift: mmdet's CocoDataset and LoadAnnotations on the same file
    keep and ignore exactly what annotation_findings says."""
    from mmdet.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(dict(
            type='CocoDataset', data_root=f'{bad}/', ann_file=TRAIN, data_prefix=dict(img='train/'),
            metainfo=dict(classes=NAMES), test_mode=True,
            pipeline=[dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]))
        infos = [dataset.get_data_info(i) for i in range(len(dataset))]
        loaded = [dataset.pipeline(dict(info, ori_shape=(info['height'], info['width']))) for info in infos]
    found, kept = annotation_findings(read(bad / TRAIN), NAMES, masks=True)
    assert found == bad_ids(bad)
    assert sum(len(item['gt_ignore_flags']) for item in loaded) == sum(kept.values()) == count(bad, TRAIN) - 2
    assert sum(int(item['gt_ignore_flags'].sum()) for item in loaded) == 2
    # without masks in the pipeline, a bad polygon is no reason to ignore
    assert annotation_findings(read(bad / TRAIN), NAMES, masks=False)[0][POLYGONS] == []


def test_no_class_of_the_file_is_one_line_in_browse_dataset(data, tmp_path, monkeypatch):
    """The template's example names left in place: mmengine would say ``need at least one array to concatenate``
    and browse_dataset that images without annotations are dropped; it names the file's categories (a run: the
    check of the 'missing' run above, which gets there by the same path)."""
    monkeypatch.setenv('DATA_ROOT', f'{data}/')
    config = user_config(DET_TEMPLATE, tmp_path / 'template.py', base=TINY_DET)  # classes: person, bicycle, car
    message = re.escape(f"train_dataloader.dataset.metainfo.classes: none of the config's classes, ('person', "
                        f"'bicycle', 'car'), is a category of {data}/{TRAIN}; its categories are ('wheel', 'box', "
                        "'sail'): name the classes after them (mmdet matches classes with category names)")
    with pytest.raises(ConfigError, match=f'^{message}$'):
        browse_dataset(Config.fromfile(str(config)), str(tmp_path / 'browse'))


def test_a_recipe_without_classes_checks_its_dataset_class_s_own(data):
    """A COCO recipe pointed at other COCO-format data: the 80 classes of mmdet's CocoDataset are the ones to match."""
    cfg = dict(type='CocoDataset', data_root=f'{data}/', ann_file=TRAIN, data_prefix=dict(img='train/'))
    with DefaultScope.overwrite_default_scope('mmdet'), \
            pytest.raises(ConfigError, match=r"none of the classes of CocoDataset \(the config's metainfo names none\)"
                                             r", \('person', .* \(80 in all\)\), is a category of "):
        build_checked_dataset(cfg, 'train_dataloader.dataset')


def test_panoptic_segments_count_as_annotations(tmp_path):
    """A panoptic file lists segments per image: each class's segments are its annotations (none left out here)."""
    panoptic.write_coco_panoptic_demo(str(tmp_path), num_train=2, num_val=1, seed=0, size=32)
    coco = read(tmp_path / 'annotations' / 'panoptic_train2017.json')
    names = {c['id']: c['name'] for c in coco['categories']}
    segments = Counter(names[s['category_id']] for r in coco['annotations'] for s in r['segments_info'])
    assert segments['background'] == 2  # the stuff class, in each image
    found, kept = annotation_findings(coco, panoptic.CLASSES, masks=True)
    assert kept == segments and not any(found.values())


def test_classes_without_annotations_are_warned_but_not_in_an_image_info_file(data):
    """COCO test-dev's image-info file lists images and categories, no annotations: nothing to count there."""
    coco = read(data / VAL)
    coco['annotations'] = [a for a in coco['annotations'] if a['category_id'] == coco['categories'][0]['id']]
    assert annotation_warnings(coco, NAMES, True, 'val.json', 'val') == [
        "val: val.json has no annotation mmdet keeps of 2 of the 3 classes: 'box', 'sail'"]
    del coco['annotations']
    assert annotation_warnings(coco, NAMES, True, 'test.json', 'test') == []


def test_strict_annotations_must_be_a_bool():
    assert strict_annotations(Config()) is False and strict_annotations(Config(dict(strict_annotations=True)))
    with pytest.raises(ConfigError, match=r"^strict_annotations='yes'; valid: True .* or False \(a warning; the "
                                          r"default\)$"):
        strict_annotations(Config(dict(strict_annotations='yes')))


WITH_MASKS = [dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]


def edited(data: Path, out: Path, edit: Callable[[dict], dict]) -> dict:
    """The training file with ``edit`` applied to it, written to ``out``; the annotation ``edit`` returns."""
    coco = read(data / TRAIN)
    ann = edit(coco)
    out.write_text(json.dumps(coco))
    return ann


def mmdet_reads(ann_file: Path, **cfg) -> None:
    """mmdet's own dataset built on ``ann_file`` (test mode: no image is read), each sample through its pipeline."""
    from mmdet.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(dict(cfg, data_root=f'{ann_file.parent}/', ann_file=ann_file.name, test_mode=True))
        for info in map(dataset.get_data_info, range(len(dataset))):
            dataset.pipeline(dict(info, ori_shape=(info['height'], info['width'])))


@pytest.mark.parametrize('key, classes, of', [('bbox', NAMES, NAMES[0]), ('area', NAMES, NAMES[0]),
                                              ('bbox', NAMES[:2], NAMES[2])])
def test_an_annotation_without_bbox_or_area_is_an_error_naming_it(data, tmp_path, key, classes, of):
    """mmdet reads both of each annotation without a default, the box before its category filter: a class left out
    (the third case) does not spare its annotations."""
    def drop(coco: dict) -> dict:
        label = next(c['id'] for c in coco['categories'] if c['name'] == of)
        ann = next(a for a in coco['annotations'] if a['category_id'] == label)
        del ann[key]
        return ann
    ann = edited(data, tmp_path / 'train.json', drop)
    cfg = dict(type='CocoDataset', metainfo=dict(classes=classes), data_prefix=dict(img=''))
    with pytest.raises(KeyError, match=key):
        mmdet_reads(tmp_path / 'train.json', **cfg)
    with pytest.raises(DataError, match=re.escape(
            f"t.ann_file: {tmp_path}/train.json: annotation {ann['id']} (image {ann['image_id']}) has no '{key}'; "
            "mmdet reads the 'bbox' ([x, y, width, height]) and 'area' (in pixels) of every annotation: add it")):
        coco_checks.check_coco(str(tmp_path / 'train.json'), cfg, 't')


@pytest.mark.parametrize('segmentation', [[], None, 'missing'])
def test_a_kept_annotation_without_a_segmentation_is_an_error_where_masks_are_loaded(data, tmp_path, segmentation):
    """mmdet's ``LoadAnnotations`` fails with ``KeyError: 'mask'`` at the first batch, strict or not; without masks
    in the pipeline the file is fine."""
    def clear(coco: dict) -> dict:
        ann = coco['annotations'][-1]
        ann.pop('segmentation') if segmentation == 'missing' else ann.update(segmentation=segmentation)
        return ann
    ann = edited(data, tmp_path / 'train.json', clear)
    cfg = dict(type='CocoDataset', metainfo=dict(classes=NAMES), data_prefix=dict(img=''), pipeline=WITH_MASKS)
    with pytest.raises(KeyError, match='mask'):
        mmdet_reads(tmp_path / 'train.json', **cfg)
    shown = "no 'segmentation'" if segmentation == 'missing' else f"'segmentation': {segmentation!r}"
    with pytest.raises(DataError, match=re.escape(
            f"t.ann_file: {tmp_path}/train.json: annotation {ann['id']} (image {ann['image_id']}) has {shown}, and "
            'the pipeline loads masks (LoadAnnotations with_mask=True); valid: a list of polygons ([[x1, y1, x2, y2, '
            "x3, y3, ...], ...]) or an RLE ({'size': [height, width], 'counts': ...}): add it, or remove the "
            'annotation')):
        coco_checks.check_coco(str(tmp_path / 'train.json'), cfg, 't')
    boxes = dict(cfg, pipeline=[dict(type='LoadAnnotations', with_bbox=True)])
    mmdet_reads(tmp_path / 'train.json', **boxes)
    assert coco_checks.check_coco(str(tmp_path / 'train.json'), boxes, 't') == []


def test_a_panoptic_file_with_a_category_the_classes_leave_out_is_an_error(tmp_path):
    """mmdet's ``CocoPanopticDataset`` has no filter of categories: the stuff class left out fails its build."""
    panoptic.write_coco_panoptic_demo(str(tmp_path), num_train=2, num_val=1, seed=0, size=32)
    ann_file = tmp_path / 'annotations' / 'panoptic_train2017.json'
    things = panoptic.CLASSES[:-1]
    cfg = dict(type='CocoPanopticDataset', metainfo=dict(classes=things, thing_classes=things, stuff_classes=()),
               data_prefix=dict(img='', seg=''), pipeline=[])
    with pytest.raises(KeyError):
        mmdet_reads(ann_file, **cfg)
    with pytest.raises(ConfigError, match=re.escape(
            f"t.metainfo.classes: 'background' is a category of the segments of the panoptic file {ann_file} but not "
            'among the classes; a panoptic dataset must list every category of its file (things and stuff: mmdet has '
            'no filter of categories for panoptic segments): add it')):
        coco_checks.check_coco(str(ann_file), cfg, 't')
    every = dict(cfg, metainfo=dict(classes=panoptic.CLASSES, thing_classes=things, stuff_classes=panoptic.STUFF))
    mmdet_reads(ann_file, **every)
    coco_checks.check_coco(str(ann_file), every, 't')  # a warning at most: some things are in no image here


def test_a_dataset_left_empty_names_the_classes_not_what_mmdet_keeps():
    """mmdet's ``filter_empty_gt`` keeps an image with any annotation of the classes (left-out and crowd ones too)."""
    with pytest.raises(DataError, match=re.escape(
            "t: no samples in 'a.json': it lists no images, or (training) none of its images has an annotation of "
            'the classes (filter_cfg.filter_empty_gt leaves such images out)')):
        check_samples([], dict(ann_file='a.json'), 't')
