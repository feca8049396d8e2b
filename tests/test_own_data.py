"""Training on your own data, as a user of mmdet / mmseg does: the templates, the class and palette checks, a missing
data root, and fine-tuning a checkpoint of another class count; through mmdet's and mmseg's own ``tools/train.py``.

The data is generated: a 3-class COCO-format dataset whose categories are renamed and numbered 7, 3, 12 (the demo's
shapes, the fourth dropped), and the 5-class ADE20K-layout demo dataset with its own palette and class names. The
templates (``configs/own_data/``) are used as docs/own_data.md says: copied and their data block edited; copies inherit
the tiny test configs instead of the full recipes (``tests/configs/tiny_{det,seg}.py``), to train on CPU in seconds.
The mismatch runs use the templates' real bases (Cascade Mask R-CNN and UperNet with ConvNeXt-T): each stops before
its first iteration, so the recipes' size costs only their build. All processes start from one module-scoped fixture
into a pool of 3 threads.
"""
import json
import os
import re
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterator

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from test_stock_tools import stock_tool

from conftest import REPO, finish, last_line, raised, tool
from convnext_dense.class_checks import HEADS, check_classes, class_counts, fit_classes, mismatches
from convnext_dense.datasets.dataset_checks import check_dataset_config
from convnext_dense.synthetic.ade import write_ade_demo
from convnext_dense.synthetic.coco import write_coco_demo
from convnext_dense.synthetic.scenes import SHAPES

DET_TEMPLATE = REPO / 'configs' / 'own_data' / 'cascade_convnext_t.py'
SEG_TEMPLATE = REPO / 'configs' / 'own_data' / 'upernet_convnext_t_512.py'
IDS = {1: 7, 2: 3, 3: 12}  # demo category id -> ours; the demo's fourth shape is left out
NAMES = ('wheel', 'box', 'sail')  # our names for the demo's first three shapes
SEG_CLASSES = ('ground', 'disc', 'tile', 'wedge', 'spark')
SEG_PALETTE = [(0, 0, 0), (200, 10, 10), (10, 200, 10), (10, 10, 200), (200, 200, 10)]


def own_coco(root: Path) -> Path:
    """The demo's COCO data rewritten as a user's 3-class dataset in the template's layout."""
    write_coco_demo(str(root / 'demo'), num_train=4, num_val=2, seed=0, size=64)
    (root / 'annotations').mkdir()
    for split, ours in (('train2017', 'train'), ('val2017', 'val')):
        shutil.move(root / 'demo' / split, root / ours)
        data = json.loads((root / 'demo' / 'annotations' / f'instances_{split}.json').read_text())
        data['annotations'] = [dict(a, category_id=IDS[a['category_id']]) for a in data['annotations']
                               if a['category_id'] in IDS]
        data['categories'] = [dict(c, id=IDS[c['id']], name=NAMES[c['id'] - 1]) for c in data['categories']
                              if c['id'] in IDS]
        (root / 'annotations' / f'{ours}.json').write_text(json.dumps(data))
    return root


def user_config(template: Path, out: Path, base: str = '', drop: str = '', **lines: str) -> Path:
    """A copy of ``template`` edited as a user does: its ``_base_`` (default: kept), ``lines`` of the data block
    replaced (name -> new right-hand side), the line starting with ``drop`` removed."""
    text = template.read_text()
    if base:
        text = re.sub(r"^_base_ = .*$", f'_base_ = [{base!r}]', text, count=1, flags=re.M)
    for name, value in lines.items():
        text, count = re.subn(rf'^{name} = .*$', f'{name} = {value}', text, count=1, flags=re.M)
        assert count == 1, name
    if drop:
        text = re.sub(rf'^{re.escape(drop)}.*\n', '', text, count=1, flags=re.M)
    out.write_text(text)
    return out


TINY_DET = str(REPO / 'tests' / 'configs' / 'tiny_det.py')
TINY_SEG = str(REPO / 'tests' / 'configs' / 'tiny_seg.py')
UPERNET = str(REPO / 'configs' / 'ade20k' / 'upernet_convnext_t_512.py')  # the segmentation template's base
DET_DATA = dict(classes=repr(NAMES))
SEG_DATA = dict(classes=repr(SEG_CLASSES), palette=repr(SEG_PALETTE))


def four_class_checkpoint(out: Path) -> Path:
    """A Cascade Mask R-CNN of the tiny test config with its 4 demo classes, as a COCO-trained file stands in."""
    from mmdet.registry import MODELS
    cfg = Config.fromfile(TINY_DET)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {'dataset_meta': {'classes': SHAPES}}}, out)
    return out


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> Iterator[Dict[str, Future]]:
    base = tmp_path_factory.mktemp('own_data')
    coco = own_coco(base / 'coco')
    write_ade_demo(str(base / 'seg'), num_train=4, num_val=2, seed=0, size=64)
    clean = {k: v for k, v in os.environ.items() if k not in ('COCO_ROOT', 'ADE20K_ROOT', 'DATA_ROOT')}
    det_env, seg_env = dict(clean, DATA_ROOT=f'{coco}/'), dict(clean, DATA_ROOT=str(base / 'seg'))
    mmdet, mmseg = str(stock_tool('mmdet', 'train.py')), str(stock_tool('mmseg', 'train.py'))
    checkpoint = four_class_checkpoint(base / 'coco_4_classes.pth')
    configs = {
        'det': user_config(DET_TEMPLATE, base / 'det.py', base=TINY_DET, **DET_DATA),
        'seg': user_config(SEG_TEMPLATE, base / 'seg.py', base=TINY_SEG, **SEG_DATA),
        # the heads left as they were (the template's fit_classes line deleted): 4 in the tiny config, 150 in UperNet
        'det_heads': user_config(DET_TEMPLATE, base / 'det_heads.py', base=TINY_DET, drop='model = ', **DET_DATA),
        'seg_heads': user_config(SEG_TEMPLATE, base / 'seg_heads.py', base=UPERNET, drop='model = ', **SEG_DATA),
    }
    jobs = {  # name: (arguments, environment, succeeds)
        'det': ([mmdet, str(configs['det']), '--work-dir', str(base / 'w_det'), '--cfg-options',
                 f'load_from={checkpoint}', 'val_evaluator.classwise=True'], det_env, True),
        'seg': ([mmseg, str(configs['seg']), '--work-dir', str(base / 'w_seg')], seg_env, True),
        'det_heads': ([mmdet, str(configs['det_heads']), '--work-dir', str(base / 'w_dh')], det_env, False),
        'seg_heads': ([mmseg, str(configs['seg_heads']), '--work-dir', str(base / 'w_sh')], seg_env, False),
        # the README's quick start on a machine without the data
        'no_ade': ([mmseg, 'configs/ade20k/upernet_convnext_t_512.py', '--work-dir', str(base / 'w_na')], clean,
                   False),
    }
    with ThreadPoolExecutor(max_workers=3) as pool:
        yield {name: pool.submit(lambda a=args, e=env, ok=ok: finish(tool(*a, env=e), ok=ok))
               for name, (args, env, ok) in jobs.items()}


def test_heads_left_at_the_demo_count_stop_naming_the_four_keys(runs):
    """The issue's case: 3 classes in metainfo, Cascade's heads left at 4; mmdet would run the epoch and fail in its
    COCO metric. Stopped before the first iteration, naming Cascade's three box heads and the mask head."""
    out = runs['det_heads'].result()
    keys = '; '.join(f'model.roi_head.{head}.num_classes=3 \\(now 4\\)'
                     for head in ('bbox_head.0', 'bbox_head.1', 'bbox_head.2', 'mask_head'))
    assert re.fullmatch(rf"{raised('ConfigError')}: train_dataloader\.dataset has 3 classes \('wheel', 'box', "
                        rf"'sail'\) but the model is set up for another count: set {keys} "
                        r'.*"Train on your own data"\)',
                        last_line(out)), last_line(out)
    assert 'Epoch(train)' not in out


def test_upernet_heads_left_at_150_stop_naming_both(runs):
    out = runs['seg_heads'].result()
    assert re.fullmatch(raised('ConfigError') + r': train_dataloader\.dataset has 5 classes .*: set model\.'
                        r'decode_head\.num_classes=5 \(now 150\); model\.auxiliary_head\.num_classes=5 \(now 150\) .*',
                        last_line(out)), last_line(out)


def no_data(variable: str, path: str) -> str:
    return (f"train_dataloader.dataset.data_root: '{path}' does not exist; the config reads data_root from "
            f'{variable}: set {variable} to your dataset folder (README: "Train on your own data")')


def test_quick_start_without_ade20k_is_one_line_naming_the_variable(runs):
    """mmseg's tools/train.py on the ADE20K recipe without the data: one line instead of an os.scandir traceback
    from inside the dataset build."""
    out = runs['no_ade'].result()
    assert re.fullmatch(raised('MissingFileError') + ': ' + re.escape(no_data('ADE20K_ROOT',
                                                                              'data/ade/ADEChallengeData2016')),
                        last_line(out)), last_line(out)
    assert 'scandir' not in out


def from_cfg(config: Path, tmp_path: Path) -> Runner:
    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(tmp_path / 'work')
    return Runner.from_cfg(cfg)


def test_quick_start_without_coco_is_one_line_naming_the_variable(tmp_path, monkeypatch):
    """The README's quick start (Cascade-T on COCO) on a machine without COCO: not pycocotools' traceback."""
    monkeypatch.delenv('COCO_ROOT', raising=False)
    monkeypatch.chdir(REPO)
    runner = from_cfg(REPO / 'configs' / 'coco' / 'cascade_convnext_t.py', tmp_path)
    with pytest.raises(FileNotFoundError, match=f'^{re.escape(no_data("COCO_ROOT", "data/coco/"))}$'):
        runner.train()


def test_palette_of_another_length_stops_before_the_build(tmp_path, monkeypatch):
    monkeypatch.setenv('DATA_ROOT', str(tmp_path))
    for folder in ('images/training', 'annotations/training', 'images/validation', 'annotations/validation'):
        (tmp_path / folder).mkdir(parents=True)  # the palette is checked after the paths
    config = user_config(SEG_TEMPLATE, tmp_path / 'seg.py', base=UPERNET, classes=repr(SEG_CLASSES),
                         palette=repr(SEG_PALETTE[:4]))
    with pytest.raises(ValueError, match=r'^train_dataloader\.dataset\.metainfo: palette has 4 colours for 5 '
                                         r'classes; give one \(R, G, B\) per class, in the order of the classes$'):
        from_cfg(config, tmp_path).train()


def test_detector_template_fine_tunes_a_4_class_checkpoint_on_3_classes(runs):
    """The template's heads follow its classes; a checkpoint with 4-class heads loads all but the class-specific
    layers (mmengine lists them: the classifiers, the per-class box regressors of this recipe, the mask logits of each
    stage), the fit check lets it through, and the run trains and evaluates with our names."""
    out = runs['det'].result()
    mismatched = set(re.findall(r'size mismatch for ([\w.]+): copying a param', out))
    assert mismatched == {f'roi_head.{layer}.{part}' for part in ('weight', 'bias') for layer in (
        *(f'bbox_head.{stage}.{fc}' for stage in range(3) for fc in ('fc_cls', 'fc_reg')),
        *(f'mask_head.{stage}.conv_logits' for stage in range(3)))}
    assert 'missing keys in source state_dict' not in out  # everything else loaded
    assert re.search(r'Epoch\(val\) \[1\]\[1/1\] .*coco/bbox_mAP: ', out), out[-2000:]
    for name in NAMES:
        assert re.search(rf'\| {name} +\|', out), name  # mmdet's per-class table names our categories


def test_segmentor_template_trains_and_evaluates_on_5_classes(runs):
    out = runs['seg'].result()
    assert re.search(r'Iter\(val\) \[1/1\] .*mIoU: \d', out), out[-2000:]
    for name in SEG_CLASSES:
        assert re.search(rf'\| +{name} +\|', out), name  # mmseg's per-class IoU table


def test_runner_from_cfg_checks_test_data_before_building_it(tmp_path, monkeypatch):
    """Runner.from_cfg(...).test() with the data root missing: our line, not pycocotools'."""
    monkeypatch.setenv('DATA_ROOT', f'{tmp_path}/nowhere/')
    runner = from_cfg(user_config(DET_TEMPLATE, tmp_path / 'det.py', base=TINY_DET, **DET_DATA), tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^test_dataloader\.dataset\.data_root: '.*/nowhere/' does not "
                                                r'exist; the config reads data_root from DATA_ROOT'):
        runner.test()


def test_class_table_covers_mask2former_and_fixes_what_it_finds():
    """mmdet's panoptic Mask2Former (things, stuff, and the class weights of length classes + 1) and mmseg's."""
    det = Config.fromfile(str(Path(stock_tool('mmdet', 'train.py')).parents[1] / 'configs' / 'mask2former' /
                              'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py'))
    meta = dict(classes=('a', 'b', 'c'), thing_classes=('a', 'b'), stuff_classes=('c',))
    assert class_counts(meta) == dict(classes=3, things=2, stuff=1)
    assert mismatches(det.model, class_counts(meta)) == [
        'model.panoptic_head.num_things_classes=2 (now 80)', 'model.panoptic_head.num_stuff_classes=1 (now 53)',
        'model.panoptic_head.loss_cls.class_weight=[1.0,1.0,1.0,0.1] (now 134 weights)',
        'model.panoptic_fusion_head.num_things_classes=2 (now 80)',
        'model.panoptic_fusion_head.num_stuff_classes=1 (now 53)']
    seg = Config.fromfile(str(Path(stock_tool('mmseg', 'train.py')).parents[1] / 'configs' / 'mask2former' /
                              'mask2former_r50_8xb2-160k_ade20k-512x512.py'))
    with pytest.raises(ValueError, match=r'decode_head\.num_classes=3 \(now 150\); model\.decode_head\.loss_cls\.'
                                         r'class_weight=\[1\.0,1\.0,1\.0,0\.1\] \(now 151 weights\)'):
        check_classes(seg.model, dict(classes=('a', 'b', 'c')), 'train_dataloader.dataset')
    assert mismatches(fit_classes(det.model, meta), class_counts(meta)) == []
    assert len(HEADS) == 4 and all(family.keys for family in HEADS)


def test_classes_in_another_order_than_the_file_stop_naming_the_order(tmp_path):
    """mmdet numbers the labels in the file's order of categories; classes in another order would name them wrongly."""
    coco = own_coco(tmp_path / 'coco')
    cfg = dict(data_root=f'{coco}/', ann_file='annotations/train.json', data_prefix=dict(img='train/'),
               metainfo=dict(classes=(NAMES[1], NAMES[0], NAMES[2])))
    with pytest.raises(ValueError, match=r"^train_dataloader\.dataset\.metainfo\.classes: .*train\.json lists "
                                         r"these categories in another order; .* list the classes as "
                                         r"\('wheel', 'box', 'sail'\)$"):
        check_dataset_config(cfg, 'train_dataloader.dataset')
    check_dataset_config(dict(cfg, metainfo=dict(classes=NAMES[::2])), 'train_dataloader.dataset')  # a subset: fine
    # a subset in another order: mmdet's get_cat_ids(cat_names=classes) keeps the file's order, so 'sail' would name
    # the wheels
    with pytest.raises(ValueError, match=r"^train_dataloader\.dataset\.metainfo\.classes: .*train\.json lists "
                                         r"these categories in another order; .* list the classes as "
                                         r"\('wheel', 'sail'\)$"):
        check_dataset_config(dict(cfg, metainfo=dict(classes=('sail', 'wheel'))), 'train_dataloader.dataset')


def test_a_subset_of_classes_in_another_order_stops_the_run_at_start_up(tmp_path, monkeypatch):
    """The detector template with two of the file's three categories, listed against the file's order: the run
    stops before building its datasets, naming the annotation file and the order to use."""
    coco = own_coco(tmp_path / 'coco')
    monkeypatch.setenv('DATA_ROOT', f'{coco}/')
    config = user_config(DET_TEMPLATE, tmp_path / 'det.py', base=TINY_DET, classes="('sail', 'wheel')")
    with pytest.raises(ValueError, match=rf"^train_dataloader\.dataset\.metainfo\.classes: {re.escape(str(coco))}/"
                                         r"annotations/train\.json lists these categories in another order; mmdet "
                                         r"numbers the labels in the file's order, so list the classes as "
                                         r"\('wheel', 'sail'\)$"):
        from_cfg(config, tmp_path).train()
