"""DDP on CPU: two gloo processes launched by tools/dist_train.sh train the detection and segmentation demos (tiny
arch, generated data), with frozen stages and (segmentation) a partial out_indices, without
find_unused_parameters. Every rank ends with the same weights, one checkpoint is written, and evaluation merges
both ranks' results."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from conftest import REPO
from convnext_dense.checkpoint import read_checkpoint
from convnext_dense.synthetic.ade import write_ade_demo
from convnext_dense.synthetic.coco import write_coco_demo

CONFIGS = REPO / 'tests' / 'configs'
NUM_VAL = 3  # odd: the sampler pads rank 1's share, and the merge must drop the padding again


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_train(config: Path, work_dir: Path, env: dict) -> str:
    env = dict(env, PYTHONPATH=str(REPO / 'tests'), OMP_NUM_THREADS='1', MASTER_PORT=str(free_port()),
               PYTHON=sys.executable)
    out = subprocess.run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(work_dir)], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return out.stdout + out.stderr


@pytest.mark.parametrize('toolkit', ['det', 'seg'])
def test_two_gloo_processes_train_in_lockstep_and_merge_evaluation(toolkit, tmp_path):
    data = tmp_path / 'data'
    if toolkit == 'det':
        write_coco_demo(str(data), num_train=4, num_val=NUM_VAL, seed=0, size=64)
        env = dict(os.environ, COCO_DEMO_ROOT=f'{data}/')
    else:
        write_ade_demo(str(data), num_train=4, num_val=NUM_VAL, seed=0, size=64)
        env = dict(os.environ, ADE_DEMO_ROOT=str(data))
    config = CONFIGS / f'ddp_{toolkit}.py'
    cfg = Config.fromfile(str(config))
    assert not cfg.get('find_unused_parameters', False)
    work_dir = tmp_path / 'work'
    dist_train(config, work_dir, env)

    before, after = torch.load(work_dir / 'rank0_before.pth'), torch.load(work_dir / 'rank0_after.pth')
    for rank in (0, 1):  # every rank starts from and ends with the same weights
        for when, params in (('before', before), ('after', after)):
            other = torch.load(work_dir / f'rank{rank}_{when}.pth')
            assert other.keys() == params.keys() and all(torch.equal(other[k], params[k]) for k in params), rank
    stages = range(cfg.model.backbone.frozen_stages + 1)
    frozen = [k for k in before if k.startswith(tuple(f'backbone.{part}{i}.' for i in stages
                                                      for part in ('downsample_layers.', 'stages.', 'norm')))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # frozen_stages held under DDP
    assert all(not torch.equal(before[k], after[k]) for k in before if k.startswith('backbone.') and k not in frozen)
    if toolkit == 'seg':  # out_indices (0, 1, 2): stage 3 and its norm are not built, so nothing is left unused
        assert not any(k.startswith(('backbone.stages.3', 'backbone.norm3')) for k in before)

    checkpoints = sorted(p.name for p in work_dir.glob('*.pth*') if not p.name.startswith('rank'))
    assert checkpoints == (['epoch_1.pth'] if toolkit == 'det' else ['iter_6.pth'])  # once, no partial file left
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir / checkpoints[0])
    saved = read_checkpoint(work_dir / checkpoints[0])['state_dict']
    assert all(torch.equal(saved[k], after[k]) for k in after)

    scalars = [json.loads(line) for path in work_dir.glob('*/vis_data/scalars.json')
               for line in path.read_text().splitlines()]
    merged = [s for s in scalars if 'ranks/total' in s]
    assert len(merged) == 1, scalars
    assert merged[0]['ranks/total'] == merged[0]['ranks/rank0'] + merged[0]['ranks/rank1'] == NUM_VAL
    assert merged[0]['ranks/rank1'] > 0
