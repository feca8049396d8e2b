"""The prepared GPU benchmark suite in its CPU --quick form: every key of its JSON is produced, peers that are not
installed (timm, mmpretrain) are reported as skipped, and the numbers it records are there."""
import json
import os

from conftest import REPO, run_tool
from convnext_dense.tools import suites


def test_gpu_suite_quick_form_produces_every_key(tmp_path):
    out = tmp_path / 'gpu.json'
    run_tool('tools/benchmark.py', '--suite', 'gpu', '--device', 'cpu', '--quick', '--out', str(out),
             env=dict(os.environ, OMP_NUM_THREADS='1'))
    report = json.loads(out.read_text())
    assert list(report['items']) == [key for key, _ in suites.gpu_items(str(REPO), 'cpu', True, 1)]
    assert report['command'].startswith('python tools/benchmark.py --suite gpu')
    assert {'torch', 'threads', 'load_average', 'device'} <= set(report['environment'])
    for key, item in report['items'].items():
        assert 'error' not in item['result'], (key, item['result'])
    for key in ('smoke_det', 'smoke_seg'):
        assert report['items'][key]['result']['finite']
    for key in ('backbone_bf16_800x1344', 'memory_with_cp', 'backbone_fp32_formats', 'backbone_bf16_16x512'):
        cases = report['items'][key]['result']
        for name, case in cases.items():
            assert case.get('skipped') or (case['infer_img_s'] > 0 and case['train_img_s'] > 0), (key, name)
            if name.startswith('ours') and 'skipped' not in case:
                assert case['max_rel_dev'] < 0.03  # bf16 within the stated bound; fp32 cases equal ours
    for key in ('cascade_t', 'upernet_t'):
        result = report['items'][key]['result']
        assert result['ours_infer_s'] > 0 and result['ours_train_s'] > 0 and result['stock_skipped']
        assert result['ours_infer_parts_s']['backbone'] > 0
    for key in ('swin_t_backbone', 'mask2former_t'):  # ConvNeXt beside Swin: both sides timed, ratios recorded
        result = report['items'][key]['result']
        assert result['infer_ratio'] > 0 and result['train_ratio'] > 0, result
    assert report['items']['mask2former_t']['result']['ours_infer_parts_s']['backbone'] > 0
