"""Registration and reuse: the backbone builds from every registry and drops into stock mmdet / mmseg configs."""
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope, init_default_scope

import convnext_dense
from conftest import TINY
from convnext_dense import ConvNeXt


@pytest.mark.parametrize('scope, type_name', [
    ('mmdet', 'ConvNeXt'), ('mmseg', 'ConvNeXt'), ('mmdet', 'convnext_dense.ConvNeXt'),
    ('mmseg', 'convnext_dense.ConvNeXt'), ('mmengine', 'convnext_dense.ConvNeXt')])
def test_builds_from_each_registry(scope, type_name):
    registry = {'mmengine': ROOT_MODELS}.get(scope) or __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(dict(type=type_name, arch=TINY, out_indices=(1, 3)))
    assert isinstance(model, ConvNeXt) and model.out_channels == (16, 32)


def test_import_needs_only_torch_and_mmengine():
    code = textwrap.dedent("""
        import sys
        for name in ('mmcv', 'mmdet', 'mmseg'):
            sys.modules[name] = None  # makes "import name" fail as if it were not installed
        import convnext_dense
        from mmengine.registry import MODELS
        assert MODELS.get('convnext_dense.ConvNeXt') is convnext_dense.ConvNeXt
        print('ok')
    """)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == 'ok', out.stderr


USER_CONFIG = """_base_ = '{base}'
custom_imports = dict(imports=['convnext_dense'], allow_failed_imports=False)
backbone = dict(_delete_=True, type='ConvNeXt', arch={arch!r}, drop_path_rate=0.1)
model = {model}
"""


def user_config(tmp_path, base: str, model: str) -> Config:
    """A user's config: a stock base with only the backbone (and the channels that follow from it) swapped."""
    path = tmp_path / 'user_config.py'
    path.write_text(USER_CONFIG.format(base=base, arch=TINY, model=model))
    return Config.fromfile(str(path))


def test_stock_mmdet_mask_rcnn_with_our_backbone_trains_and_predicts(tmp_path):
    cfg = user_config(tmp_path, 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
                      f"dict(backbone=backbone, neck=dict(in_channels={list(TINY['channels'])}))")
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    assert isinstance(model.backbone, ConvNeXt)
    model.init_weights()
    packed = demo_mm_inputs(2, (3, 96, 128), num_items=[3, 3], with_mask=True)
    data = model.data_preprocessor(packed, True)
    losses = model.parse_losses(model(**data, mode='loss'))[0]
    losses.backward()
    assert torch.isfinite(losses) and model.backbone.stages[0][0].pwconv1.weight.grad is not None
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False), mode='predict')
    assert len(results) == 2 and 'masks' in results[0].pred_instances


def test_stock_mmseg_upernet_with_our_backbone_trains_and_predicts(tmp_path):
    cfg = user_config(tmp_path, 'mmseg::_base_/models/upernet_r50.py', (
        "dict(pretrained=None, backbone=backbone, data_preprocessor=dict(size=(64, 96)), "  # pretrained: a ResNet
        f"decode_head=dict(in_channels={list(TINY['channels'])}, channels=32), "
        f"auxiliary_head=dict(in_channels={TINY['channels'][2]}, channels=16))"))
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    init_default_scope('mmseg')
    model = revert_sync_batchnorm(MODELS.build(cfg.model))  # SyncBN needs a process group; one process: BN
    assert isinstance(model.backbone, ConvNeXt)
    model.init_weights()
    samples = []
    for _ in range(2):
        sample = SegDataSample(gt_sem_seg=PixelData(data=torch.randint(0, 19, (1, 64, 96))))
        sample.set_metainfo(dict(img_shape=(64, 96), ori_shape=(64, 96), pad_shape=(64, 96)))
        samples.append(sample)
    packed = dict(inputs=[torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8) for _ in range(2)],
                  data_samples=samples)
    losses = model.parse_losses(model(**model.data_preprocessor(packed, True), mode='loss'))[0]
    losses.backward()
    assert torch.isfinite(losses) and model.backbone.stages[3][0].pwconv2.weight.grad is not None
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(packed, False), mode='predict')
    assert results[0].pred_sem_seg.data.shape == (1, 64, 96)


def test_package_exports():
    assert convnext_dense.ConvNeXt is ConvNeXt
    assert set(convnext_dense.ARCH_SETTINGS) >= {'atto', 'tiny', 'small', 'base', 'large', 'xlarge', 'huge'}
