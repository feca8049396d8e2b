"""The package as OpenMMLab tools see it: the model index, ``convnext_dense::`` inheritance in a fresh process, and
the switch that turns the start-up hook off.

The wheel itself (built, installed outside the checkout, ``mim train`` / ``test`` / ``search``) is checked by
``tests/installed/run.sh``, the last step of ``make test``. Here a fresh process gets the hook as an install gives it
(``site.addsitedir`` runs the checkout's ``convnext_dense_mim.pth``, as site-packages' copy runs at start-up) and
finds the package where this checkout is imported from, its ``.mim`` links included: an editable install's layout.
"""
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import yaml

from conftest import REPO, read_config
from convnext_dense.checkpoint.layouts import DINOV3_CHECKPOINTS, OFFICIAL_CHECKPOINTS

CONFIGS = REPO / 'configs'
NOT_RECIPES = ('_base_', 'own_data')  # folders of bases and templates; demo_*.py are no recipes either
# What an entry's Metadata.Pretrained holds, by the start file's name: a published file's download URL
# (OFFICIAL_CHECKPOINTS); for DINOv3's gated files, which have no public URL (Meta's are signed, per user), timm's
# ungated copy of the same weights, ``hf://timm/convnext_{size}.dinov3_lvd1689m`` (DINOV3_CHECKPOINTS: what the
# missing-file error names and CONVNEXT_PRETRAINED accepts). No other start file is indexed.
START_FILES = {**OFFICIAL_CHECKPOINTS, **DINOV3_CHECKPOINTS}
# Recipes whose accuracy nobody has published (nor have we measured it): their entries have no Results. Every other
# entry lists its published results. A new recipe without published results is named here, on purpose.
UNPUBLISHED = {
    'configs/ade20k/upernet_dinov3_convnext_b_640.py', 'configs/ade20k/upernet_dinov3_convnext_l_640.py',
    'configs/coco/cascade_dinov3_convnext_b.py', 'configs/coco/cascade_dinov3_convnext_l.py',
    'configs/coco/dino_dinov3_convnext_b_4scale_12ep.py', 'configs/coco/dino_dinov3_convnext_l_4scale_12ep.py',
    # the roadmap: the paper measured its steps on ImageNet only
    'configs/roadmap/mask_rcnn_roadmap_1x.py', 'configs/roadmap/upernet_roadmap_512_160k.py',
    # Mask2Former: the stock Swin recipes' results are Swin's, not these configs'
    *(f'configs/ade20k/mask2former_convnext_{name}.py' for name in ('t_512', 's_512', 'b_640_in22k', 'l_640_in22k')),
    *(f'configs/coco/mask2former_convnext_{name}.py' for name in (
        't_instance', 's_instance', 't_panoptic', 'b_panoptic_in22k', 'l_panoptic_in22k')),
}


def recipe_configs() -> List[Path]:
    return sorted(path for path in CONFIGS.glob('*/*.py')
                  if path.parent.name not in NOT_RECIPES and not path.name.startswith('demo_'))


def indexed() -> Dict[str, dict]:
    """Config path (relative to the repository) -> its model entry, from every metafile model-index.yml imports."""
    index = yaml.safe_load((REPO / 'model-index.yml').read_text())
    models = {}
    for metafile in index['Import']:
        meta = yaml.safe_load((REPO / metafile).read_text())
        collections = {c['Name'] for c in meta['Collections']}
        for model in meta['Models']:
            assert model['In Collection'] in collections, model['Name']
            assert model['Config'] not in models, f'{model["Config"]} indexed twice'
            models[model['Config']] = model
    return models


def empty_values(node, path: str = '') -> Iterator[str]:
    """Where ``node`` (an entry as YAML reads it) holds None."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from empty_values(value, f'{path}/{key}')
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from empty_values(value, f'{path}[{i}]')
    elif node is None:
        yield path


def test_every_recipe_is_indexed_and_every_indexed_config_exists():
    models = indexed()
    recipes = {str(path.relative_to(REPO)) for path in recipe_configs()}
    assert sorted(recipes - set(models)) == [], 'recipe configs missing from the model index (see its metafiles)'
    assert sorted(set(models) - recipes) == [], 'indexed configs that are no recipe config'
    assert sorted(UNPUBLISHED - recipes) == [], 'UNPUBLISHED names configs that are no recipe config'
    folders = {path.parent.name for path in recipe_configs()}
    imported = yaml.safe_load((REPO / 'model-index.yml').read_text())['Import']
    assert sorted(imported) == sorted(f'configs/{folder}/metafile.yml' for folder in folders)


@pytest.mark.parametrize('config', [str(p.relative_to(REPO)) for p in recipe_configs()])
def test_index_entry_matches_its_config(config, default_paths):
    """Name, start file and where to get it (START_FILES), and the published results, each saying where it was
    published; no Results only for the UNPUBLISHED recipes."""
    model = indexed()[config]
    assert model['Name'] == Path(config).stem
    # no empty value: an unquoted comma inside a {...} entry splits the value and leaves a key with none
    assert not list(empty_values(model)), f'{config}: empty {list(empty_values(model))} (quote values with commas)'
    meta = model['Metadata']
    assert {'Parameters', 'FLOPs', 'Pretraining Data', 'Pretrained'} <= set(meta)
    start = Path(read_config(REPO / config).model.backbone.init_cfg.checkpoint).name
    assert meta['Pretrained'] == START_FILES[start]
    if config in UNPUBLISHED:
        assert 'Results' not in model, f'{config} is listed as unpublished: a published result takes it off UNPUBLISHED'
    else:
        assert model.get('Results'), f'{config}: no published result; an unpublished recipe is named in UNPUBLISHED'
    for result in model.get('Results', []):
        assert all(result.get(key) for key in ('Task', 'Dataset', 'Metrics', 'Published')), result


# A user's configs in a folder of their own, inheriting ours by name; the script prints what it checks.
USER_DET = '''_base_ = 'convnext_dense::coco/cascade_convnext_t.py'
model = dict(backbone=dict(init_cfg=None))
'''
USER_SEG = '''_base_ = 'convnext_dense::ade20k/demo_upernet_convnext.py'
'''
FRESH = r'''
import site, sys
site.addsitedir(sys.argv[1])  # runs convnext_dense_mim.pth, as an install's copy runs at start-up
assert 'convnext_dense' not in sys.modules and 'mmengine' not in sys.modules
from mmengine.config import Config
from mmengine.registry import DefaultScope, MODELS
for path in sys.argv[2:]:
    cfg = Config.fromfile(path)
    scopes = set()
    def walk(node):
        if isinstance(node, dict):
            scopes.add(node.get('_scope_'))
            [walk(v) for v in node.values()]
        elif isinstance(node, (list, tuple)):
            [walk(v) for v in node]
    walk(cfg._cfg_dict)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    print(path, type(model).__name__, sorted(map(str, scopes)))
'''


def fresh(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', FRESH, str(REPO), *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=args[0].rpartition('/')[0] if args else None)


def test_user_configs_inherit_ours_by_name_in_a_fresh_process(tmp_path):
    """The gate (MODULE2PACKAGE), the package path, and no ``_scope_='convnext_dense'`` on mmdet's or mmseg's dicts:
    Cascade-T and the UperNet demo build from a user's folder."""
    (tmp_path / 'det.py').write_text(USER_DET)
    (tmp_path / 'seg.py').write_text(USER_SEG)
    out = fresh(str(tmp_path / 'det.py'), str(tmp_path / 'seg.py'), env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-3000:]
    det, seg = out.stdout.strip().splitlines()[-2:]
    assert det.endswith("det.py CascadeRCNN ['None', 'mmdet']"), det
    assert seg.endswith("seg.py EncoderDecoder ['None', 'mmseg']"), seg


def test_the_hook_turns_off(tmp_path):
    (tmp_path / 'det.py').write_text(USER_DET)
    out = fresh(str(tmp_path / 'det.py'), env=dict(os.environ, CONVNEXT_DENSE_NO_MIM_HOOK='1'))
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1] == 'AssertionError: mmengine does not support to load convnext_dense ' \
                                                  'config.'
