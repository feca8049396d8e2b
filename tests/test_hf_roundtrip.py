"""A user's round trip: a shrunk UperNet trained by mmseg's own ``tools/train.py``, exported with ``export_hf``,
then run by transformers' ``pipeline('image-segmentation')`` (its PIL image processor: no torchvision) on
matplotlib's ``grace_hopper.jpg``: its label map is ``tools/infer.py``'s inferencer's (whole-image mode) wherever the
top-2 logit margin exceeds a small tolerance, and the pipeline's processor and model give the inferencer's logits
to 1e-4 of their largest value (PIL and OpenCV decode this JPEG to the same pixels). The exported folder, given to
the inferencer as its checkpoint, gives the same logits again.

The export writes ``do_resize=False``: the test config's pipeline does not resize either, so both see the photo at
its own 512 x 600 pixels.
"""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_hf_export import no_hub_kernels  # noqa: F401  (the module-scoped fixture, autouse here too)
from test_stock_tools import PHOTO, SEG, stock_tool

from conftest import output, run_tool, tool
from convnext_dense.synthetic.ade import write_ade_demo
from convnext_dense.tools.export_hf import export_hf
from convnext_dense.tools.infer import build_inferencer

transformers = pytest.importorskip('transformers')
MARGIN = 1e-3  # top-2 logit margin below which a pixel's label may flip with the JPEG decoder


@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> Path:
    """A checkpoint of tests/configs/tiny_seg.py trained for 2 iterations by mmseg's stock tools/train.py."""
    root = tmp_path_factory.mktemp('roundtrip')
    write_ade_demo(str(root / 'ade'), num_train=4, num_val=2, seed=0, size=64)
    env = dict(os.environ, ADE_DEMO_ROOT=str(root / 'ade'), OMP_NUM_THREADS='1')
    run_tool(str(stock_tool('mmseg', 'train.py')), str(SEG), '--work-dir', str(root / 'work'), '--cfg-options',
             'train_cfg.max_iters=2', 'train_cfg.val_interval=2', env=env)
    return root / 'work' / 'iter_2.pth'


def test_pipeline_gives_infer_labels(trained, tmp_path):
    export_hf(str(SEG), str(trained), str(tmp_path / 'hf'))
    # our tools/test.py takes the exported folder as its checkpoint (run beside the in-process checks)
    tested = tool('tools/test.py', str(SEG), str(tmp_path / 'hf'), '--work-dir', str(tmp_path / 'test'),
                  env=dict(os.environ, ADE_DEMO_ROOT=str(trained.parent.parent / 'ade')))
    segmenter = transformers.pipeline('image-segmentation', model=str(tmp_path / 'hf'))
    segments = segmenter(Image.open(PHOTO))
    label_ids = {name: i for i, name in segmenter.model.config.id2label.items()}
    theirs = np.full(Image.open(PHOTO).size[::-1], -1)
    for segment in segments:
        theirs[np.asarray(segment['mask']) > 0] = label_ids[segment['label']]
    assert (theirs >= 0).all()

    pred = build_inferencer(str(SEG), str(trained))(str(PHOTO), return_datasamples=True)
    ours = pred.pred_sem_seg.data[0].numpy()  # what tools/infer.py writes as the label PNG
    logits = pred.seg_logits.data.numpy()
    top2 = np.sort(logits, axis=0)[-2:]
    decided = (top2[1] - top2[0]) > MARGIN * np.abs(logits).max()
    assert ours.shape == theirs.shape and decided.mean() > 0.9
    assert (ours[decided] == theirs[decided]).all(), (ours[decided] != theirs[decided]).mean()
    # two iterations from scratch predict one class on a photo, so the logits are compared too
    inputs = segmenter.image_processor(images=Image.open(PHOTO), return_tensors='pt')
    with torch.no_grad():
        hf_logits = segmenter.model(**inputs).logits[0].numpy()
    relative = np.abs(hf_logits - logits).max() / np.abs(logits).max()
    assert relative <= 1e-4, relative
    # the exported folder is a checkpoint of the config too: the inferencer reads it, same logits
    back = build_inferencer(str(SEG), str(tmp_path / 'hf'))(str(PHOTO), return_datasamples=True).seg_logits.data
    assert np.abs(back.numpy() - logits).max() <= 1e-4 * np.abs(logits).max()
    assert tested.wait(timeout=600) == 0 and 'mIoU' in output(tested), output(tested)[-3000:]
    print(f'labels equal on {(ours == theirs).mean():.4%} of pixels, on all of the {decided.mean():.2%} with a '
          'margin')
