"""The class table (``convnext_dense.datasets.class_checks``) on Mask2Former, whose class counts come in two kinds: an
instance dataset names its classes only (mmdet's ``CocoDataset``: every class a thing, no stuff), a panoptic one
also its ``thing_classes`` and ``stuff_classes``; the heads take things and stuff, and the classifier's weights one
more ("no object").

mmdet's stock instance and panoptic configs, ours and the tiny test configs fit the datasets they name; for a dataset
of other counts ``mismatches`` names every class-dependent key with the value it needs, and ``fit_classes`` sets them
so that nothing is left to name. No model is built: what a training run would stop on (``DatasetCheckHook``) is seen
here in milliseconds.
"""
from pathlib import Path

import mmdet
import pytest
from mmengine.registry import DefaultScope

from conftest import REPO, read_config
from convnext_dense.datasets.class_checks import check_classes, class_counts, fit_classes, mismatches
from convnext_dense.synthetic import panoptic
from convnext_dense.synthetic.scenes import SHAPES

pytestmark = pytest.mark.usefixtures('default_paths')

STOCK = Path(mmdet.__file__).parent / '.mim' / 'configs' / 'mask2former'
CONFIGS = {  # name: (config file, panoptic)
    'stock_instance': (STOCK / 'mask2former_r50_8xb2-lsj-50e_coco.py', False),
    'stock_panoptic': (STOCK / 'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py', True),
    'ours_instance': (REPO / 'configs' / 'coco' / 'mask2former_convnext_t_instance.py', False),
    'ours_panoptic': (REPO / 'configs' / 'coco' / 'mask2former_convnext_t_panoptic.py', True),
    'tiny_instance': (REPO / 'tests' / 'configs' / 'tiny_m2f_ins.py', False),
    'tiny_panoptic': (REPO / 'tests' / 'configs' / 'tiny_m2f_pan.py', True),
}
INSTANCE = dict(classes=SHAPES)  # as a COCO-format instance dataset's metainfo: no thing_classes
PANOPTIC = dict(classes=panoptic.CLASSES, thing_classes=panoptic.SHAPES, stuff_classes=panoptic.STUFF)
HEAD, FUSION = 'model.panoptic_head', 'model.panoptic_fusion_head'


def dataset_metainfo(cfg) -> dict:
    """The metainfo the config's training dataset has once built: its class's METAINFO, updated by the config's."""
    from mmdet.registry import DATASETS
    dataset = cfg.train_dataloader.dataset
    with DefaultScope.overwrite_default_scope('mmdet'):
        return {**DATASETS.get(dataset.type).METAINFO, **(dataset.get('metainfo') or {})}


def counts_of(model) -> dict:
    """What the heads are set up for, by mmdet's rules: classes = things + stuff, one weight more."""
    head, fusion = model.panoptic_head, model.panoptic_fusion_head
    return dict(things=head.num_things_classes, stuff=head.num_stuff_classes, weights=len(head.loss_cls.class_weight),
                no_object=head.loss_cls.class_weight[-1], fusion=(fusion.num_things_classes, fusion.num_stuff_classes))


@pytest.mark.parametrize('name', list(CONFIGS))
def test_each_config_fits_the_dataset_it_names(name):
    cfg = read_config(CONFIGS[name][0])
    metainfo = dataset_metainfo(cfg)
    assert ('thing_classes' in metainfo) == CONFIGS[name][1]
    assert mismatches(cfg.model, class_counts(metainfo)) == []
    check_classes(cfg.model, metainfo, 'train_dataloader.dataset')
    things = len(metainfo['thing_classes'] if CONFIGS[name][1] else metainfo['classes'])
    stuff = len(metainfo.get('stuff_classes', ()))
    assert counts_of(cfg.model) == dict(things=things, stuff=stuff, weights=things + stuff + 1, no_object=0.1,
                                        fusion=(things, stuff))


def test_instance_data_of_other_counts_names_every_key_and_fit_sets_them():
    """Four classes, no thing_classes: all four are things, no stuff. On the stock instance config three keys differ;
    on the panoptic one (an instance dataset with the panoptic recipe) the stuff counts too."""
    counts = class_counts(INSTANCE)
    assert counts == dict(classes=4, things=4, stuff=0)
    for name, weights, stuff in (('stock_instance', 81, 0), ('ours_instance', 81, 0), ('stock_panoptic', 134, 53)):
        model = read_config(CONFIGS[name][0]).model
        assert mismatches(model, counts) == [
            f'{HEAD}.num_things_classes=4 (now 80)', *([f'{HEAD}.num_stuff_classes=0 (now {stuff})'] if stuff else []),
            f'{HEAD}.loss_cls.class_weight=[1.0,1.0,1.0,1.0,0.1] (now {weights} weights)',
            f'{FUSION}.num_things_classes=4 (now 80)',
            *([f'{FUSION}.num_stuff_classes=0 (now {stuff})'] if stuff else [])], name
        with pytest.raises(ValueError, match=r"^train_dataloader\.dataset has 4 classes \('circle', 'square', "
                                             rf"'triangle', 'star'\) .*: set {HEAD}\.num_things_classes=4"):
            check_classes(model, INSTANCE, 'train_dataloader.dataset')
        assert mismatches(fit_classes(model, INSTANCE), counts) == []
        assert counts_of(model) == dict(things=4, stuff=0, weights=5, no_object=0.1, fusion=(4, 0)), name
        check_classes(model, INSTANCE, 'train_dataloader.dataset')


def test_panoptic_data_of_other_counts_names_every_key_and_fit_sets_them():
    counts = class_counts(PANOPTIC)
    assert counts == dict(classes=5, things=4, stuff=1)
    for name in ('stock_panoptic', 'ours_panoptic'):
        model = read_config(CONFIGS[name][0]).model
        assert mismatches(model, counts) == [
            f'{HEAD}.num_things_classes=4 (now 80)', f'{HEAD}.num_stuff_classes=1 (now 53)',
            f'{HEAD}.loss_cls.class_weight=[1.0,1.0,1.0,1.0,1.0,0.1] (now 134 weights)',
            f'{FUSION}.num_things_classes=4 (now 80)', f'{FUSION}.num_stuff_classes=1 (now 53)'], name
        assert mismatches(fit_classes(model, PANOPTIC), counts) == []
        assert counts_of(model) == dict(things=4, stuff=1, weights=6, no_object=0.1, fusion=(4, 1)), name
    # a panoptic recipe given instance data: the stuff counts go to 0 with the things
    model = fit_classes(read_config(CONFIGS['ours_panoptic'][0]).model, INSTANCE)
    assert counts_of(model) == dict(things=4, stuff=0, weights=5, no_object=0.1, fusion=(4, 0))
