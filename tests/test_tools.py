"""The analysis tools: params/FLOPs, log curves and training time, dataset browsing and ONNX export, each through its
library function and at least once through its command line, on the tiny demo configs and generated data."""
import json
import os
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from mmengine.analysis import FlopAnalyzer
from PIL import Image

from conftest import REPO, randomize, run_tool
from convnext_dense import ARCH_SETTINGS, ConvNeXt
from convnext_dense.synthetic.ade import write_ade_demo
from convnext_dense.synthetic.coco import write_coco_demo
from convnext_dense.tools.analyze_logs import format_train_time, load_scalars, plot_curves, train_time
from convnext_dense.tools.browse_dataset import browse_dataset
from convnext_dense.tools.cli import build_model, load_config
from convnext_dense.tools.export_onnx import build_backbone, verify_onnx
from convnext_dense.tools.get_flops import DET_SHAPE, complexity, default_shape

DET_DEMO = 'configs/coco/demo_cascade_convnext.py'
SEG_DEMO = 'configs/ade20k/demo_upernet_convnext.py'


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    """Tiny generated datasets in the demo configs' layouts: {env variable: root}."""
    root = tmp_path_factory.mktemp('data')
    write_coco_demo(str(root / 'coco'), num_train=2, num_val=1, size=64)
    write_ade_demo(str(root / 'ade'), num_train=2, num_val=1, size=64)
    return {'COCO_DEMO_ROOT': f'{root / "coco"}/', 'ADE_DEMO_ROOT': str(root / 'ade')}


# ---------------------------------------------------------------------------------------------------------------
# get_flops
# ---------------------------------------------------------------------------------------------------------------

def backbone_multiply_adds(depths, channels, height, width):
    """Convolutions and linears as multiply-adds, plus mmengine's 5 per element of each affine LayerNorm."""
    total, prev = 0, None
    for i, (depth, c) in enumerate(zip(depths, channels)):
        pixels = (height // (4 * 2**i)) * (width // (4 * 2**i))
        if i == 0:
            total += pixels * c * 3 * 4 * 4 + 5 * c * pixels  # stem conv + LN
        else:
            total += 5 * prev[0] * prev[1] + pixels * c * prev[0] * 2 * 2  # LN + downsample conv
        total += depth * pixels * (c * 7 * 7 + 5 * c + 2 * 4 * c * c)  # dwconv, LN, two pointwise linears
        total += 5 * c * pixels  # output norm
        prev = (c, pixels)
    return total


@pytest.mark.parametrize('shape', [(64, 64), (96, 160)])
def test_backbone_params_are_its_numel_and_flops_its_multiply_adds(shape):
    model = ConvNeXt('atto')
    result = complexity(model, shape)
    assert result.params == sum(p.numel() for p in model.parameters())
    assert result.flops == backbone_multiply_adds(**ARCH_SETTINGS['atto'], height=shape[0], width=shape[1])
    assert set(result.part_params) == {name for name, _ in model.named_children()}


def test_mask_heads_are_counted_on_the_kept_detections_only():
    cfg = load_config(str(REPO / DET_DEMO))
    model = build_model(cfg)
    shape = (64, 64)  # the RoI heads' work does not depend on the image size
    model.test_cfg.rpn.max_per_img, model.test_cfg.rcnn.max_per_img = 24, 8  # few RoIs: a quick test
    kept = model.test_cfg.rcnn.max_per_img
    with_masks = complexity(model, shape, 'mmdet')
    model.test_cfg.rcnn.max_per_img = 0
    without = complexity(model, shape, 'mmdet')
    heads = model.roi_head.mask_head
    one_roi = torch.randn(1, heads[0].in_channels, 14, 14)
    per_roi = sum(FlopAnalyzer(head, (one_roi,)).unsupported_ops_warnings(False).total() for head in heads)
    assert with_masks.flops - without.flops == pytest.approx(kept * per_roi, rel=1e-6)
    assert with_masks.part_flops['backbone'] == complexity(model.backbone, shape).flops
    assert with_masks.params == sum(p.numel() for p in model.parameters())


def test_default_input_sizes_are_the_published_ones():
    assert default_shape(load_config(str(REPO / 'configs/coco/cascade_convnext_t.py'))) == DET_SHAPE == (800, 1280)
    assert default_shape(load_config(str(REPO / 'configs/ade20k/upernet_convnext_t_512.py'))) == (512, 2048)
    assert default_shape(load_config(str(REPO / 'configs/ade20k/upernet_convnext_b_640_in22k.py'))) == (640, 2560)
    with pytest.raises(ValueError, match='--shape'):
        default_shape(load_config(str(REPO / SEG_DEMO)))  # whole images, no test Resize


def test_get_flops_cli_segmentation():
    out = run_tool('tools/get_flops.py', SEG_DEMO, '--shape', '64', '96')
    params = int(re.search(r'^params: \S+ \(([\d,]+)\)', out, re.M).group(1).replace(',', ''))
    flops = int(re.search(r'^FLOPs: \S+ \(([\d,]+);', out, re.M).group(1).replace(',', ''))
    model = build_model(load_config(str(REPO / SEG_DEMO)))
    assert params == sum(p.numel() for p in model.parameters())  # the auxiliary head's included
    assert flops == complexity(model, (64, 96), 'mmseg').flops
    assert re.search(r'^  auxiliary_head .* FLOPs +0$', out, re.M)  # trains only


# ---------------------------------------------------------------------------------------------------------------
# analyze_logs
# ---------------------------------------------------------------------------------------------------------------

def write_jsonl(path: Path, records) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))
    return str(path)


@pytest.fixture
def logs(tmp_path):
    """An epoch-based detection log (val step = epoch) and an iteration-based segmentation log (val step = iter)."""
    det = write_jsonl(tmp_path / 'det' / '20240101_000000' / 'vis_data' / 'scalars.json', [
        dict(lr=1e-4, loss=3.0, time=5.0, data_time=0.5, epoch=1, iter=10, step=10),
        dict(lr=1e-4, loss=2.0, time=1.0, data_time=0.1, epoch=1, iter=20, step=20),
        {'coco/bbox_mAP': 0.1, 'coco/segm_mAP': 0.05, 'time': 0.3, 'step': 1},
        dict(lr=1e-4, loss=1.5, time=2.0, data_time=0.1, epoch=2, iter=30, step=30),
        dict(lr=1e-4, loss=1.0, time=3.0, data_time=0.1, epoch=2, iter=40, step=40),
        {'coco/bbox_mAP': 0.3, 'coco/segm_mAP': 0.2, 'time': 0.3, 'step': 2},
    ])
    seg = write_jsonl(tmp_path / 'seg' / '20240101_000000' / 'vis_data' / 'scalars.json', [
        dict(lr=1e-4, loss=2.0, time=0.4, data_time=0.01, iter=50, step=50),
        dict(lr=1e-4, loss=1.0, time=0.4, data_time=0.01, iter=100, step=100),
        dict(aAcc=80.0, mIoU=40.0, mAcc=50.0, step=100),
    ])
    return det, seg


def test_validation_steps_become_iterations(logs):
    det, seg = (load_scalars(path) for path in logs)
    assert det.series('coco/bbox_mAP') == ([20, 40], [0.1, 0.3])  # epoch 1 ended at iteration 20
    assert det.series('loss') == ([10, 20, 30, 40], [3.0, 2.0, 1.5, 1.0])
    assert seg.series('mIoU') == ([100], [40.0])
    assert det.label == 'det/20240101_000000'


def test_train_time_leaves_out_the_start_up_interval(logs):
    t = train_time(load_scalars(logs[0]))
    assert t.mean == pytest.approx(2.0) and t.iters == 40 and t.data_mean == pytest.approx(0.1)
    assert t.epochs == {1: pytest.approx(1.0), 2: pytest.approx(2.5)}


def test_plot_curve_cli(logs, tmp_path):
    out = tmp_path / 'curves.png'
    printed = run_tool('tools/analyze_logs.py', 'plot_curve', *logs, '--keys', 'loss', 'coco/bbox_mAP', 'mIoU',
                       'no/such_key', '--out', str(out))
    assert 'drew loss, coco/bbox_mAP, mIoU of 2 log(s)' in printed
    with Image.open(out) as image:
        assert image.format == 'PNG' and image.height > image.width  # three stacked panels


def test_cal_train_time_report(logs):
    det, seg = (load_scalars(path) for path in logs)
    report = format_train_time(det, train_time(det))
    assert 'time per iteration: 2.0000 s' in report and 'slowest epoch 2 (2.5000 s/iter)' in report
    assert 'fastest epoch 1 (1.0000 s/iter)' in report
    report = format_train_time(seg, train_time(seg))
    assert report.startswith('seg/20240101_000000') and 'time per iteration: 0.4000 s' in report
    assert 'epoch' not in report.split('\n', 1)[1]  # iteration-based: no epochs to compare


def test_plot_curve_names_the_available_keys_when_none_match(logs, tmp_path):
    with pytest.raises(ValueError, match=r"available: .*'coco/bbox_mAP'.*'loss'"):
        plot_curves([load_scalars(p) for p in logs], ['bbox_mAP'], tmp_path / 'x.png')


# ---------------------------------------------------------------------------------------------------------------
# browse_dataset
# ---------------------------------------------------------------------------------------------------------------

def test_browse_detection_cli(demo_data, tmp_path):
    out_dir = tmp_path / 'det'
    printed = run_tool('tools/browse_dataset.py', DET_DEMO, '--output-dir', str(out_dir), '--max', '1',
                       env={**os.environ, **demo_data})
    assert 'wrote 1 drawings' in printed
    (drawing,) = out_dir.glob('*.png')
    with Image.open(drawing) as image:
        assert image.mode == 'RGB' and min(image.size) > 0


def test_browse_segmentation_draws_the_labels_over_the_pipeline_output(demo_data, tmp_path, monkeypatch):
    monkeypatch.setenv('ADE_DEMO_ROOT', demo_data['ADE_DEMO_ROOT'])
    files = browse_dataset(load_config(str(REPO / SEG_DEMO)), str(tmp_path))
    assert len(files) == 2  # the whole training set
    raw = sorted((Path(demo_data['ADE_DEMO_ROOT']) / 'images' / 'training').glob('*.jpg'))
    for drawing, source in zip(files, raw):
        with Image.open(drawing) as drawn, Image.open(source) as original:
            assert drawn.size == original.size  # the demo pipeline keeps the size (flip only)
            # every image has labelled shapes, so the overlay changes some pixels
            assert not np.array_equal(np.asarray(drawn.convert('RGB')), np.asarray(original.convert('RGB')))


# ---------------------------------------------------------------------------------------------------------------
# export_onnx
# ---------------------------------------------------------------------------------------------------------------

def test_export_onnx_matches_pytorch_at_two_sizes(tmp_path):
    backbone = randomize(ConvNeXt('atto')).eval()
    checkpoint = tmp_path / 'atto.pth'
    torch.save(backbone.state_dict(), checkpoint)
    out = tmp_path / 'atto.onnx'
    printed = run_tool('tools/export_onnx.py', 'atto', '--checkpoint', str(checkpoint), '--out', str(out),
                       '--shape', '64', '96', '--verify')
    assert f'wrote {out}' in printed and printed.count('onnxruntime vs PyTorch') == 2

    diffs = verify_onnx(backbone, str(out), [(64, 96), (100, 70)], batch=2)
    assert max(diffs.values()) < 1e-4, diffs
    graph = onnx.load(str(out))
    assert max(op.version for op in graph.opset_import if op.domain in ('', 'ai.onnx')) >= 17
    norms = [node for node in graph.graph.node if node.op_type == 'LayerNormalization']
    assert norms and all(attr.f == pytest.approx(1e-6) for node in norms for attr in node.attribute
                         if attr.name == 'epsilon')
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param != '' for d in dims] == [True, False, True, True]  # batch, 3, height, width


def test_build_backbone_from_a_config_or_an_arch():
    backbone = build_backbone(str(REPO / DET_DEMO))
    assert backbone.arch_channels == ARCH_SETTINGS['atto']['channels'] and not backbone.training
    with pytest.raises(ValueError, match='neither a config file nor a ConvNeXt arch'):
        build_backbone('tinny')
