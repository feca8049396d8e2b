"""Inference where users run it: ``tools/infer.py`` on a real photo, a folder and a short video made from it; the
mm inferencer APIs; the whole-segmentor and backbone + FPN ONNX exports, checked with onnxruntime on the photo.

The checkpoints are what ``tools/train.py`` writes, after two iterations of the tiny test configs (which inherit the
demo configs and their 4 shape classes): the check is that each path runs and writes what it promises, not accuracy.
"""
import importlib.util
import json
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from pycocotools import mask as mask_util

from conftest import REPO, finish, kill_while_writing, read_config, tool
from convnext_dense import ConvNeXt
from convnext_dense.synthetic.ade import CLASSES, write_ade_demo
from convnext_dense.synthetic.coco import write_coco_demo
from convnext_dense.synthetic.scenes import SHAPES
from convnext_dense.tools import infer
from convnext_dense.tools.export_models import (
    PHOTO,
    AdaptiveAvgPool2dAnySize,
    SegmentorGraph,
    build_graph,
    export_graph,
    photo,
    verify_graph,
    verify_shapes,
)
from convnext_dense.utils.atomic import PARTIAL_SUFFIX

DET = REPO / 'tests' / 'configs' / 'tiny_det.py'  # inherits configs/coco/demo_cascade_convnext.py
SEG = REPO / 'tests' / 'configs' / 'tiny_seg.py'  # inherits configs/ade20k/demo_upernet_convnext.py
WIDER = dict(depths=(1, 1, 1, 1), channels=(16, 32, 48, 64))  # the test configs' arch has channels (8, 16, 24, 32)
SHIPPED = sorted((REPO / 'configs').glob('[!_]*/[!_]*.py'))


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """{'det' | 'seg': checkpoint written by tools/train.py}, the data roots in os.environ while the module runs,
    and small inputs made from the photo: a folder (one image nested, one PNG) and a 3-frame video."""
    root = tmp_path_factory.mktemp('infer')
    write_coco_demo(str(root / 'coco'), num_train=2, num_val=1, seed=0, size=64)
    write_ade_demo(str(root / 'ade'), num_train=2, num_val=1, seed=0, size=64)
    roots = dict(COCO_DEMO_ROOT=f'{root / "coco"}/', ADE_DEMO_ROOT=str(root / 'ade'))
    env = dict(os.environ, **roots)
    runs = [tool('tools/train.py', str(DET), '--work-dir', str(root / 'det'), '--cfg-options',
                 'train_cfg.val_interval=100', env=env),
            tool('tools/train.py', str(SEG), '--work-dir', str(root / 'seg'), '--cfg-options',
                 'train_cfg.max_iters=2', 'train_cfg.val_interval=100', env=env)]
    small = cv2.resize(cv2.imread(str(PHOTO)), (128, 150), interpolation=cv2.INTER_AREA)
    (root / 'photos' / 'nested').mkdir(parents=True)
    cv2.imwrite(str(root / 'photos' / 'a.jpg'), small)
    cv2.imwrite(str(root / 'photos' / 'nested' / 'b.png'), small[:, ::-1])
    writer = cv2.VideoWriter(str(root / 'clip.mp4'), cv2.VideoWriter_fourcc(*'mp4v'), 5, (128, 150))
    for shift in (0, 8, 16):
        writer.write(np.roll(small, shift, axis=1))
    writer.release()
    for run in runs:
        finish(run)
    found = dict(root=root, env=env, det=root / 'det' / 'epoch_1.pth', seg=root / 'seg' / 'iter_2.pth')
    # the command-line runs go on in the background while the tests in this process run
    found['cli'] = {toolkit: infer_cli(found, toolkit, root / f'out_{toolkit}') for toolkit in ('det', 'seg')}
    found['cli']['export'] = tool('tools/export_onnx.py', str(SEG), '--part', 'model', '--checkpoint',
                                  str(found['seg']), '--out', str(root / 'upernet.onnx'), '--shape', '96', '128',
                                  '--verify', env=env)
    found['cli']['kill'] = start_to_be_killed(found, root / 'kill')
    saved = {key: os.environ.get(key) for key in roots}
    os.environ.update(roots)  # the configs read their data roots when parsed
    yield found
    for proc in found['cli'].values():  # a run whose test was deselected or failed early (the killed one waits)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key)
        else:
            os.environ[key] = value


def infer_cli(trained, toolkit: str, out: Path) -> subprocess.Popen:
    """Start tools/infer.py on the photo, the folder and the video (segmentation: two images per forward pass)."""
    config, batch = (DET, '1') if toolkit == 'det' else (SEG, '2')
    return tool('tools/infer.py', str(config), str(trained[toolkit]), str(PHOTO), str(trained['root'] / 'photos'),
                str(trained['root'] / 'clip.mp4'), '--out-dir', str(out), '--batch-size', batch, env=trained['env'])


@pytest.fixture(scope='module')
def det_inferencer(trained):
    return infer.build_inferencer(str(DET), str(trained['det']))


@pytest.fixture(scope='module')
def seg_inferencer(trained):
    return infer.build_inferencer(str(SEG), str(trained['seg']))


def check_outputs(out: Path, printed: str, suffix: str) -> None:
    """The drawn images and video, one prediction per image and frame, the progress bar and the summary."""
    height, width = cv2.imread(str(PHOTO)).shape[:2]
    assert cv2.imread(str(out / 'vis' / PHOTO.name)).shape == (height, width, 3)
    assert cv2.imread(str(out / 'vis' / 'a.jpg')).shape == (150, 128, 3)
    assert cv2.imread(str(out / 'vis' / 'nested' / 'b.png')).shape == (150, 128, 3)
    video = cv2.VideoCapture(str(out / 'vis' / 'clip.mp4'))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and int(video.get(cv2.CAP_PROP_FRAME_WIDTH)) == 128
    preds = sorted(str(p.relative_to(out / 'preds')) for p in (out / 'preds').rglob('*') if p.is_file())
    names = [f'{PHOTO.stem}', 'a', 'clip/000000', 'clip/000001', 'clip/000002', 'nested/b']
    assert preds == sorted(name + suffix for name in names)
    assert not list(out.rglob('*' + PARTIAL_SUFFIX + '*'))
    assert '6/6' in printed  # the progress bar over 3 images and 3 frames
    assert re.search(r'infer\.py: 3 images and 1 video \(3 frames\) in [\d.]+ s, [\d.]+ s per image', printed)


def predict(inferencer, image: np.ndarray):
    return inferencer.forward(inferencer.collate_fn([inferencer.pipeline(image)]))[0]


def test_detection_json_holds_the_predictions(trained, det_inferencer, tmp_path):
    """Boxes, scores and labels are the model's; the RLE masks decode back to its masks."""
    inferencer = det_inferencer
    sources = infer.collect_inputs([str(trained['root'] / 'photos' / 'a.jpg')])
    infer.run_inference(inferencer, sources, str(tmp_path), score_thr=0.0, progress=False)
    record = json.loads((tmp_path / 'preds' / 'a.json').read_text())
    expected = predict(inferencer, cv2.imread(str(sources[0].path))).pred_instances
    assert len(record['labels']) > 0 and record['labels'] == expected.labels.tolist()
    np.testing.assert_allclose(record['scores'], expected.scores.numpy(), rtol=1e-6)
    np.testing.assert_allclose(record['bboxes'], expected.bboxes.numpy(), rtol=1e-5)
    assert all(mask['size'] == [150, 128] for mask in record['masks'])
    np.testing.assert_array_equal(mask_util.decode(record['masks']).transpose(2, 0, 1), expected.masks.numpy())


@pytest.mark.parametrize('toolkit', ['det', 'seg'])
def test_class_names_come_from_the_config_when_the_checkpoint_has_none(trained, tmp_path, toolkit):
    """A checkpoint of weights only (mmdet's inferencer would name the 80 COCO classes, mmseg's the 19 Cityscapes
    ones): the config's 4 shapes (det) or 5 classes (seg)."""
    state = torch.load(trained[toolkit], map_location='cpu', weights_only=False)['state_dict']
    bare = tmp_path / 'weights_only.pth'
    torch.save(dict(state_dict=state), bare)
    ours = infer.build_inferencer(str(DET if toolkit == 'det' else SEG), str(bare))
    assert tuple(ours.model.dataset_meta['classes']) == (tuple(SHAPES) if toolkit == 'det' else CLASSES)


def test_bad_inputs_get_one_line_each(trained, tmp_path, monkeypatch, capsys):
    """tools/infer.py (run in this process, as python runs it) stops before loading anything, with one line per bad
    input and no traceback."""
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'notes.txt').write_text('not an image')
    missing = tmp_path / 'missing.jpg'
    monkeypatch.setattr(sys, 'argv', ['tools/infer.py', str(SEG), str(trained['seg']), str(missing),
                                      str(tmp_path / 'notes.txt'), str(tmp_path / 'empty'), '--out-dir',
                                      str(tmp_path / 'out')])
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(REPO / 'tools' / 'infer.py'), run_name='__main__')
    lines = str(stopped.value.code).splitlines()  # what python prints on stderr for sys.exit(message)
    assert len(lines) == 3
    assert lines[0] == f'infer.py: error: {missing}: no such file or folder'
    assert lines[1].startswith(f'infer.py: error: {tmp_path / "notes.txt"}: not an image (.jpg')
    assert lines[2].startswith(f'infer.py: error: {tmp_path / "empty"}: folder without images or videos')
    assert not (tmp_path / 'out').exists() and 'Loads checkpoint' not in capsys.readouterr().out


def test_bad_device_checkpoint_and_files(trained, seg_inferencer, tmp_path):
    for device in ('cuda:7', 'tpu'):
        with pytest.raises(ValueError, match=f"device '{device}' is not usable here.*offers cpu"):
            infer.check_device(device)
    wider = tmp_path / 'wider.pth'  # the trained segmentor with the backbone of another arch
    state = torch.load(trained['seg'], map_location='cpu', weights_only=False)['state_dict']
    state.update({'backbone.' + k: v for k, v in ConvNeXt(WIDER).state_dict().items()})
    torch.save(dict(state_dict=state), wider)
    with pytest.raises(ValueError, match=f'checkpoint {re.escape(str(wider))}: .* has shape .*set model.backbone.arch'):
        infer.build_inferencer(str(SEG), str(wider))
    # the test configs share their backbone, so the fit check passes; the class count does not
    with pytest.raises(ValueError, match='5 class names from the checkpoint, but the model predicts 4 classes'):
        infer.build_inferencer(str(DET), str(trained['seg']))
    with pytest.raises(FileNotFoundError, match='checkpoint .*nope.pth does not exist'):
        infer.build_inferencer(str(SEG), str(tmp_path / 'nope.pth'))
    fake_video, fake_image = tmp_path / 'fake.mp4', tmp_path / 'fake.jpg'
    fake_video.write_bytes(b'not a video')
    fake_image.write_bytes(b'not an image')
    with pytest.raises(ValueError, match='fake.mp4: not a readable video'):
        infer.frame_count(infer.collect_inputs([str(fake_video)])[0])
    with pytest.raises(ValueError, match='fake.jpg: not a readable image'):
        infer.run_inference(seg_inferencer, infer.collect_inputs([str(fake_image)]), str(tmp_path / 'out'),
                            progress=False)
    with pytest.raises(ValueError, match='would overwrite those of'):
        infer.collect_inputs([str(trained['root'] / 'photos' / 'a.jpg'), str(trained['root'] / 'photos')])


def start_to_be_killed(trained, root: Path) -> subprocess.Popen:
    """Start tools/infer.py on a folder whose first image's drawing goes into a named pipe, where the run waits for
    test_a_kill_leaves_only_complete_files to read from it."""
    big = root / 'in' / 'big.png'
    big.parent.mkdir(parents=True)
    cv2.imwrite(str(big), cv2.resize(cv2.imread(str(PHOTO)), (1024, 1200)))  # its drawing: megabytes of PNG
    shutil.copy(trained['root'] / 'photos' / 'a.jpg', big.parent / 'c.jpg')
    (root / 'out' / 'vis').mkdir(parents=True)
    os.mkfifo(root / 'out' / 'vis' / ('big.png' + PARTIAL_SUFFIX))
    return tool('tools/infer.py', str(SEG), str(trained['seg']), str(big.parent), '--out-dir', str(root / 'out'),
                env=trained['env'])


def test_mm_apis_with_a_train_py_checkpoint(trained, seg_inferencer, tmp_path):
    """init_detector / inference_detector, DetInferencer, init_model / inference_model and MMSegInferencer, as the
    manual shows them; our label PNG is MMSegInferencer's prediction; and the exported segmentor graph computes what
    mmseg's whole-image inference does."""
    from mmdet.apis import DetInferencer, inference_detector, init_detector
    from mmseg.apis import MMSegInferencer, inference_model, init_model
    image = cv2.imread(str(trained['root'] / 'photos' / 'a.jpg'))
    detector = init_detector(str(DET), str(trained['det']), device='cpu')
    assert tuple(detector.dataset_meta['classes']) == tuple(SHAPES)
    assert len(inference_detector(detector, image).pred_instances) > 0
    assert len(DetInferencer(model=str(DET), weights=str(trained['det']), device='cpu')(image)['predictions']) == 1
    segmentor = init_model(str(SEG), str(trained['seg']), device='cpu')
    assert tuple(segmentor.dataset_meta['classes']) == CLASSES
    labels = inference_model(segmentor, image).pred_sem_seg.data[0]
    assert labels.shape == image.shape[:2]
    stock = MMSegInferencer(model=str(SEG), weights=str(trained['seg']), device='cpu')(image)['predictions']
    np.testing.assert_array_equal(stock, labels.numpy())
    infer.run_inference(seg_inferencer, infer.collect_inputs([str(trained['root'] / 'photos' / 'a.jpg')]),
                        str(tmp_path), progress=False)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / 'preds' / 'a.png'), cv2.IMREAD_UNCHANGED), stock)
    with torch.no_grad():
        _, graph_labels = SegmentorGraph(segmentor)(torch.from_numpy(image[:, :, ::-1].copy()).permute(2, 0, 1)[None]
                                                    .float())
    assert (graph_labels[0] == labels).float().mean() >= 0.999


@pytest.mark.parametrize('config', SHIPPED, ids=lambda p: p.name)
def test_inferencers_read_every_shipped_config(config, default_paths):
    """What both inferencers read from a config: its test pipeline runs on the photo with their loader, and its test
    dataset names as many classes as the model predicts (the class names of a checkpoint without any)."""
    from mmengine.registry import DATASETS
    cfg = read_config(config)
    if 'panoptic' in config.name and importlib.util.find_spec('panopticapi') is None:
        pytest.skip('panopticapi is not installed: pip install --no-deps panopticapi-lite==0.2.0')
    if cfg.default_scope == 'mmdet':
        from mmdet.apis import DetInferencer as Inferencer
        if 'panoptic_head' in cfg.model:  # Mask2Former: things, then stuff
            predicted = cfg.model.panoptic_head.num_things_classes + cfg.model.panoptic_head.num_stuff_classes
        else:
            heads = cfg.model.roi_head.bbox_head if 'roi_head' in cfg.model else cfg.model.bbox_head  # RTMDet: 1 stage
            predicted = (heads[-1] if isinstance(heads, list) else heads).num_classes
    else:
        from mmseg.apis import MMSegInferencer as Inferencer
        predicted = cfg.model.decode_head.num_classes
    with infer.toolkit_scope(cfg):
        pipeline = Inferencer._init_pipeline(object.__new__(Inferencer), cfg)  # the loader swap of their __init__
        packed = pipeline(str(PHOTO))
        classes = DATASETS.build(dict(cfg.test_dataloader.dataset, lazy_init=True)).metainfo['classes']
    assert packed['inputs'].shape[0] == 3 and len(classes) == predicted


@pytest.mark.parametrize('shape', [(6, 6), (37, 23), (100, 71)])
def test_any_size_pooling_is_adaptive_average_pooling(shape):
    x = torch.randn(2, 4, *shape)
    for bins in (1, 2, 3, 6):
        torch.testing.assert_close(AdaptiveAvgPool2dAnySize(bins)(x), torch.nn.AdaptiveAvgPool2d(bins)(x))


def test_export_detector_backbone_and_fpn(trained, tmp_path):
    graph = build_graph(str(DET), str(trained['det']))
    out = str(tmp_path / 'fpn.onnx')
    names = export_graph(graph, out, (96, 128))
    assert names == [f'fpn{i}' for i in range(5)]
    results = verify_graph(graph, out, verify_shapes((96, 128)))
    assert all(result['max_abs_diff'] <= 1e-4 for result in results.values()), results
    assert photo((70, 90)).shape == (1, 3, 70, 90)


# The command-line runs, started by the fixture, last: the tests above run meanwhile

def test_infer_detection_cli(trained):
    """A photo, a folder (recursive) and a video: drawn results and a JSON per image and frame (the masks are checked
    in test_detection_json_holds_the_predictions)."""
    out = trained['root'] / 'out_det'
    check_outputs(out, finish(trained['cli']['det']), '.json')
    record = json.loads((out / 'preds' / f'{PHOTO.stem}.json').read_text())
    height, width = cv2.imread(str(PHOTO)).shape[:2]
    assert record['classes'] == list(SHAPES) and (record['height'], record['width']) == (height, width)
    assert record['image'] == PHOTO.name
    # a barely trained detector scores every class near 1 / (classes + 1), below the default threshold of 0.3
    assert record['labels'] == record['scores'] == record['bboxes'] == record['masks'] == []


def test_infer_segmentation_cli(trained):
    """The same inputs: drawn results, and a label PNG per image and frame with the config's class indices."""
    out = trained['root'] / 'out_seg'
    check_outputs(out, finish(trained['cli']['seg']), '.png')
    labels = cv2.imread(str(out / 'preds' / f'{PHOTO.stem}.png'), cv2.IMREAD_UNCHANGED)
    assert labels.dtype == np.uint8 and labels.shape == cv2.imread(str(PHOTO)).shape[:2]
    assert set(np.unique(labels)) <= set(range(len(CLASSES)))


def test_export_segmentor_verified_on_the_photo(trained):
    """The whole segmentor with dynamic size: onnxruntime matches PyTorch at the export size and two others, none a
    multiple of 32 but the first."""
    out = trained['root'] / 'upernet.onnx'
    printed = finish(trained['cli']['export'])
    checks = re.findall(r'at (\d+) x (\d+): max abs difference (\S+), labels agree on ([\d.]+)%', printed)
    assert [(int(h), int(w)) for h, w, _, _ in checks] == verify_shapes((96, 128)), printed[-2000:]
    assert all(float(diff) <= 1e-4 and float(agree) >= 99.9 for _, _, diff, agree in checks)
    graph = onnx.load(str(out))
    assert [o.name for o in graph.graph.output] == ['scores', 'labels']
    assert [d.dim_param != '' for d in graph.graph.input[0].type.tensor_type.shape.dim] == [True, False, True, True]


def test_a_kill_leaves_only_complete_files(trained):
    """SIGKILL while the drawing of the first image is being written: its final name never appears, every file
    under a final name is complete."""
    out = trained['root'] / 'kill' / 'out'
    assert kill_while_writing(trained['cli']['kill'], out / 'vis' / ('big.png' + PARTIAL_SUFFIX)).startswith(b'\x89PNG')
    assert not (out / 'vis' / 'big.png').exists()
    assert (out / 'preds' / 'big.png').is_file()  # written before the drawing
    for path in out.rglob('*'):
        if path.is_file() and PARTIAL_SUFFIX not in path.name:
            assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None, path
