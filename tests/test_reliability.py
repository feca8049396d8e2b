"""Reliability through the real tools on tiny generated data: a SIGKILL during a checkpoint write, then --resume,
matches an uninterrupted run; a non-finite loss stops with its iteration; bad input gets one clear line; untrusted
checkpoints never run code."""
import json
import os
import re
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from conftest import REPO, finish, kill_while_writing, last_line, read_config, tool
from convnext_dense.checkpoint import read_checkpoint
from convnext_dense.datasets.dataset_checks import build_checked_dataset, check_labels
from convnext_dense.engine.resume import POINTER
from convnext_dense.utils.atomic import PARTIAL_SUFFIX

SEG = REPO / 'tests' / 'configs' / 'tiny_seg.py'
DET = REPO / 'tests' / 'configs' / 'tiny_det.py'


def logged(work_dir: Path) -> List[Dict[int, dict]]:
    """Per run in ``work_dir`` (oldest first), the json scalars of each training iteration."""
    return [{s['iter']: s for s in map(json.loads, path.read_text().splitlines()) if 'loss' in s}
            for path in sorted(work_dir.glob('*/vis_data/scalars.json'))]


# ----------------------------------------------------------------------------------------------------------------
# Crash and resume
# ----------------------------------------------------------------------------------------------------------------

def test_atomic_write_keeps_the_old_file_when_killed_mid_write(tmp_path):
    from convnext_dense.utils.atomic import write_atomic
    target = tmp_path / POINTER
    write_atomic(str(target), 'old')
    assert target.read_text() == 'old' and not Path(str(target) + PARTIAL_SUFFIX).exists()
    fifo = Path(str(target) + PARTIAL_SUFFIX)
    os.mkfifo(fifo)
    proc = tool('-c', 'from convnext_dense.utils.atomic import write_atomic; '
                      f'write_atomic({str(target)!r}, b"new" * 10**6)',
                env=dict(os.environ))
    assert kill_while_writing(proc, fifo).startswith(b'new')
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == 'old'  # never truncated, never half new


def test_kill_during_checkpoint_write_then_resume_equals_uninterrupted_run(tmp_path, seg_env):
    """6 iterations, a checkpoint every 2 (max_keep_ckpts=1). The killed run dies while writing iter_4: iter_2 must
    survive as a complete file that last_checkpoint names, and the resumed iterations 3-6 must log the losses and
    end with the weights and optimizer state of the uninterrupted run."""
    reference, killed = tmp_path / 'reference', tmp_path / 'killed'
    uninterrupted = tool('tools/train.py', str(SEG), '--work-dir', str(reference), env=seg_env)
    killed.mkdir()
    os.mkfifo(killed / f'iter_4.pth{PARTIAL_SUFFIX}')
    partial = kill_while_writing(tool('tools/train.py', str(SEG), '--work-dir', str(killed), env=seg_env),
                                 killed / f'iter_4.pth{PARTIAL_SUFFIX}')
    assert (killed / POINTER).read_text() == str(killed / 'iter_2.pth')
    assert read_checkpoint(killed / 'iter_2.pth')['meta']['iter'] == 2  # complete: it reads
    assert not (killed / 'iter_4.pth').exists()
    (killed / f'iter_4.pth{PARTIAL_SUFFIX}').unlink()  # leave what a kill leaves: a truncated partial file
    (killed / f'iter_4.pth{PARTIAL_SUFFIX}').write_bytes(partial)

    log = finish(tool('tools/train.py', str(SEG), '--work-dir', str(killed), '--resume', env=seg_env))
    finish(uninterrupted)
    assert 'resumed epoch: 0, iter: 2' in log
    dumped = (killed / SEG.name).read_text()  # what the configs declare, as the run saved it
    assert "type='convnext_dense.AtomicCheckpointHook'" in dumped and "type='convnext_dense.DatasetCheckHook'" in dumped
    (expected,), resumed = logged(reference), logged(killed)[-1]
    assert sorted(resumed) == [3, 4, 5, 6]
    for it, scalars in resumed.items():
        assert scalars['lr'] == expected[it]['lr']
        assert abs(scalars['loss'] - expected[it]['loss']) <= 1e-6, (it, scalars['loss'], expected[it]['loss'])

    a, b = read_checkpoint(reference / 'iter_6.pth'), read_checkpoint(killed / 'iter_6.pth')
    assert a['meta']['iter'] == b['meta']['iter'] == 6 and a['param_schedulers'] == b['param_schedulers']
    for key, value in a['state_dict'].items():
        assert torch.allclose(value, b['state_dict'][key], atol=1e-6), key
    state_a, state_b = a['optimizer']['state'], b['optimizer']['state']
    assert state_a.keys() == state_b.keys() and state_a
    for index, moments in state_a.items():
        for name, value in moments.items():
            assert torch.allclose(value, state_b[index][name], atol=1e-6), (index, name)
    assert sorted(p.name for p in killed.glob('*.pth*')) == ['iter_6.pth']  # outdated and partial files gone


def test_non_finite_loss_stops_naming_the_iteration_and_keeps_the_last_checkpoint(tmp_path, det_env, seg_env):
    """lr=1e30 blows the weights up after the first step; a checkpoint after every iteration. Detection and
    segmentation run side by side."""
    options = ['--cfg-options', 'optim_wrapper.optimizer.lr=1e30', 'default_hooks.checkpoint.interval=1',
               'default_hooks.checkpoint.by_epoch=False']
    runs = {tmp_path / toolkit: tool('tools/train.py', str(config), '--work-dir', str(tmp_path / toolkit), *options,
                                     env=env)
            for toolkit, config, env in (('det', DET, det_env), ('seg', SEG, seg_env))}
    for work_dir, proc in runs.items():
        out = finish(proc, ok=False)
        match = re.fullmatch(r'FloatingPointError: non-finite loss at iteration (\d+): (.*)loss=nan(.*)',
                             last_line(out))
        assert match, last_line(out)
        iteration = int(match.group(1))
        assert iteration >= 2  # a good checkpoint exists
        good = work_dir / f'iter_{iteration - 1}.pth'
        assert f'the last checkpoint, {good}, is kept' in out
        assert (work_dir / POINTER).read_text() == str(good)
        assert all(torch.isfinite(v).all() for v in read_checkpoint(good)['state_dict'].values())
        assert not (work_dir / f'iter_{iteration}.pth').exists()


# ----------------------------------------------------------------------------------------------------------------
# Bad input, in the datasets: the checks DatasetCheckHook runs, around building one dataset
# ----------------------------------------------------------------------------------------------------------------

def dataset(config: Path, loader: str = 'train_dataloader'):
    """``loader``'s dataset of ``config``, built and checked (the config parsed once per data root)."""
    cfg = read_config(config)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return build_checked_dataset(cfg[loader].dataset, f'{loader}.dataset')


def coco_json(env: dict, split: str = 'train2017') -> Path:
    return Path(env['COCO_DEMO_ROOT']) / 'annotations' / f'instances_{split}.json'


def edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize('case, error, message', [
    ('root', FileNotFoundError, r"train_dataloader\.dataset\.data_root: '.*/nowhere/' does not exist"),
    ('ann_file', FileNotFoundError, r'train_dataloader\.dataset\.ann_file: .*instances_train2017\.json.* does not '
                                    r'exist'),
    ('json', ValueError, r'train_dataloader\.dataset\.ann_file: .*instances_train2017\.json is not valid JSON: '
                         r'Expecting .* at line 1 column'),
    ('category', ValueError, r'annotation 1 \(image 1\) has category_id 99, not one of the ids in "categories": '
                             r'\[1, 2, 3, 4\]'),
    ('missing image', ValueError, r'1 of 4 samples have a bad file \(named by .*instances_train2017\.json\): '
                                  r'.*/train2017/000000000003\.png does not exist'),
    ('truncated png', ValueError, r'000000000002\.png is a truncated PNG'),
    ('not an image', ValueError, r"000000000002\.png is not an image \(starts with b'<html>"),
    ('no annotations', ValueError, r'train_dataloader\.dataset: no samples in'),
])
def test_bad_coco_data_fails_with_one_clear_line(case, error, message, det_env, monkeypatch):
    root = Path(det_env['COCO_DEMO_ROOT'])
    image = root / 'train2017' / '000000000002.png'
    if case == 'root':
        det_env['COCO_DEMO_ROOT'] = f'{root.parent / "nowhere"}/'
    elif case == 'ann_file':
        coco_json(det_env).unlink()
    elif case == 'json':
        coco_json(det_env).write_text('{"images": [')
    elif case == 'category':
        edit_json(coco_json(det_env), lambda d: d['annotations'][0].update(category_id=99))
    elif case == 'missing image':
        (root / 'train2017' / '000000000003.png').unlink()
    elif case == 'truncated png':
        image.write_bytes(image.read_bytes()[:200])
    elif case == 'not an image':
        image.write_text('<html>404 Not Found</html>')
    elif case == 'no annotations':
        edit_json(coco_json(det_env), lambda d: d.update(annotations=[]))
    monkeypatch.setenv('COCO_DEMO_ROOT', det_env['COCO_DEMO_ROOT'])  # the config reads it when parsed
    with pytest.raises(error, match=message) as info:
        dataset(DET)
    assert '\n' not in str(info.value)


def test_coco_cases_mmdet_handles(det_env, monkeypatch):
    """Degenerate boxes are skipped, images without annotations leave training but stay in evaluation, grayscale
    and RGBA images load as 3 channels."""
    monkeypatch.setenv('COCO_DEMO_ROOT', det_env['COCO_DEMO_ROOT'])
    root = Path(det_env['COCO_DEMO_ROOT'])
    before = [len(dataset(DET).get_data_info(i)['instances']) for i in range(4)]

    def degenerate_and_empty(data: dict) -> None:
        first = next(a for a in data['annotations'] if a['image_id'] == 1)
        first['bbox'][2], first['area'] = 0, 0  # zero width
        data['annotations'] = [a for a in data['annotations'] if a['image_id'] != 2]  # image 2: no annotations
    edit_json(coco_json(det_env), degenerate_and_empty)
    edit_json(coco_json(det_env, 'val2017'), lambda d: d.update(annotations=[a for a in d['annotations']
                                                                               if a['image_id'] != 2]))
    image = cv2.imread(str(root / 'train2017' / '000000000001.png'))
    cv2.imwrite(str(root / 'train2017' / '000000000001.png'), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(root / 'train2017' / '000000000003.png'), cv2.cvtColor(image, cv2.COLOR_BGR2BGRA))

    train = dataset(DET)
    assert [Path(train.get_data_info(i)['img_path']).name for i in range(len(train))] == \
        ['000000000001.png', '000000000003.png', '000000000004.png']
    assert len(train.get_data_info(0)['instances']) == before[0] - 1
    for index in (0, 1):  # the grayscale and the RGBA image
        assert train[index]['inputs'].shape[0] == 3
    assert len(dataset(DET, 'val_dataloader')) == 2  # the image without annotations is evaluated


def test_bad_ade_data(seg_env, monkeypatch):
    """A truncated or missing JPEG fails at build; a label above the class count fails when its batch runs; a 16 px
    image (smaller than the stride 32) is padded and trains."""
    monkeypatch.setenv('ADE_DEMO_ROOT', seg_env['ADE_DEMO_ROOT'])
    root = Path(seg_env['ADE_DEMO_ROOT'])
    image = root / 'images' / 'training' / 'ADE_train_00000002.jpg'
    original = image.read_bytes()
    image.write_bytes(original[:len(original) // 2])
    with pytest.raises(ValueError, match=r'1 of 4 samples have a bad file: .*ADE_train_00000002\.jpg is a '
                                         r'truncated JPEG \(no end-of-image marker\)\. Fix or remove them'):
        dataset(SEG)
    image.unlink()  # mmseg lists the image folder: the sample is gone, its label map is what is left
    with pytest.raises(ValueError, match=r'1 of 4 samples have a bad file: .*ADE_train_00000002\.jpg does not exist '
                                         r'\(its label map .*ADE_train_00000002\.png does\)'):
        dataset(SEG)
    image.write_bytes(original)

    label = root / 'annotations' / 'training' / 'ADE_train_00000003.png'
    values = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
    values[:4, :4] = 200
    cv2.imwrite(str(label), values)
    small = root / 'images' / 'training' / 'ADE_train_00000004.jpg'
    cv2.imwrite(str(small), cv2.resize(cv2.imread(str(small)), (16, 16)))
    small_label = root / 'annotations' / 'training' / 'ADE_train_00000004.png'
    cv2.imwrite(str(small_label), cv2.resize(cv2.imread(str(small_label), cv2.IMREAD_UNCHANGED), (16, 16),
                                             interpolation=cv2.INTER_NEAREST))
    train = dataset(SEG)
    with pytest.raises(ValueError, match=r'label map .*ADE_train_00000003\.png holds class indices \[199\] \(after '
                                         r'reduce_zero_label, if set\) but the config has 5 classes: valid are '
                                         r'0\.\.4 and 255'):
        check_labels(train[2]['data_samples'], len(train.metainfo['classes']), train.ignore_index,
                     'train_dataloader.dataset')

    from mmseg.registry import MODELS
    cfg = Config.fromfile(str(SEG))
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    batch = model.data_preprocessor(pseudo_collate([train[3], train[3]]), training=True)  # BN needs two
    assert batch['inputs'].shape[-2:] == (32, 32)  # padded to the stride
    losses = model.loss(batch['inputs'], batch['data_samples'])
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
    with pytest.raises(ValueError, match=r'input of size \(16, 16\) is too small for 4 ConvNeXt stages: height and '
                                         'width must be at least 32'):
        model.backbone(torch.zeros(1, 3, 16, 16))


def test_unknown_arch_names_the_valid_ones():
    from mmseg.registry import MODELS
    cfg = Config.fromfile(str(SEG))
    cfg.model.backbone.arch = 'tinny'
    with DefaultScope.overwrite_default_scope('mmseg'), pytest.raises(
            ValueError, match=r"unknown ConvNeXt arch 'tinny'; valid: atto, femto, .*, huge, xxlarge or a dict with "):
        MODELS.build(cfg.model)


# ----------------------------------------------------------------------------------------------------------------
# Bad configs and checkpoints, untrusted files: end to end through the tools (run side by side)
# ----------------------------------------------------------------------------------------------------------------

class Payload:
    """Unpickling this runs ``touch MARKER``: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def checkpoints(tmp_path: Path) -> Dict[str, Path]:
    """Crafted and mismatched checkpoint files, and the marker the malicious one would create."""
    from mmseg.registry import MODELS
    cfg = Config.fromfile(str(SEG))
    cfg.model.backbone.arch = dict(depths=(1, 1, 1, 1), channels=(16, 32, 48, 64))  # the tests use 8..32
    cfg.model.decode_head.in_channels, cfg.model.auxiliary_head.in_channels = [16, 32, 48, 64], 48
    with DefaultScope.overwrite_default_scope('mmseg'):
        wider = MODELS.build(cfg.model)
    files = dict(marker=tmp_path / 'code_ran', evil=tmp_path / 'evil.pth', wider=tmp_path / 'wider.pth',
                 foreign=tmp_path / 'resnet.pth')
    torch.save({'state_dict': {}, 'meta': Payload(files['marker'])}, files['evil'])
    torch.save({'state_dict': wider.state_dict(), 'meta': {}}, files['wider'])
    torch.save({'state_dict': {'conv1.weight': torch.zeros(64, 3, 7, 7), 'fc.weight': torch.zeros(10, 64)}},
               files['foreign'])
    return files


def test_bad_configs_checkpoints_and_untrusted_files_through_the_tools(tmp_path, seg_env):
    files = checkpoints(tmp_path)
    train = ['tools/train.py', str(SEG), '--work-dir', str(tmp_path / 'work')]
    test = ['tools/test.py', str(SEG)]
    runs: Dict[str, Sequence[str]] = {
        'test.py, malicious': [*test, str(files['evil'])],
        '--resume, malicious': [*train, '--resume', str(files['evil'])],
        'load_from, malicious': [*train, '--cfg-options', f'load_from={files["evil"]}'],
        'misspelt key': [*train, '--cfg-options', 'model.backbone.drop_path_rat=0.1'],
        'test.py, wrong arch': [*test, str(files['wider'])],
        'load_from, no tensor fits': [*train, '--cfg-options', f'load_from={files["foreign"]}'],
    }
    refused = rf"convnext_dense\.utils\.errors\.CheckpointError: refusing to read '{files['evil']}': it holds more " \
              r'than weights \(.*\)\. convnext_dense ' \
              r'reads checkpoints with torch\.load\(weights_only=True\), so code in a file never runs.*'
    expected = {
        'test.py, malicious': refused,
        '--resume, malicious': refused,
        'load_from, malicious': refused,
        'misspelt key': r"TypeError: ConvNeXt\.__init__\(\) got an unexpected keyword argument 'drop_path_rat'",
        'test.py, wrong arch': rf"convnext_dense\.utils\.errors\.CheckpointError: checkpoint {files['wider']}: "
                               r'backbone\.downsample_layers\.0\.0\.weight '
                               r'has shape \(16, 3, 4, 4\) in the file but \(8, 3, 4, 4\) in the model; the file '
                               r'holds ConvNeXt no arch in ARCH_SETTINGS \(depths \(1, 1, 1, 1\), channels \(16, 32, '
                               r'48, 64\)\), .*: set model\.backbone\.arch to match the file',
        'load_from, no tensor fits': rf"convnext_dense\.utils\.errors\.CheckpointError: checkpoint "
                                     rf"{files['foreign']}: "
                                     r'none of its 2 tensors fits the EncoderDecoder of this config \(backbone '
                                     r'ConvNeXt .*\); the file holds no ConvNeXt backbone .*; it is a checkpoint of '
                                     r'another model',
    }

    with ThreadPoolExecutor(max_workers=3) as pool:
        outputs = dict(zip(runs, pool.map(lambda name: finish(tool(*runs[name], env=seg_env), ok=False), runs)))
    for name, out in outputs.items():
        assert re.fullmatch(expected[name], last_line(out)), f'{name}: {last_line(out)}'
    assert not files['marker'].exists()  # the payload never ran
