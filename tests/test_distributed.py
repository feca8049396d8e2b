"""DDP on CPU: two gloo processes launched by tools/dist_train.sh train the detection and segmentation demos (tiny
arch, generated data), with frozen stages and (segmentation) a partial out_indices, without
find_unused_parameters. Every rank ends with the same weights, one checkpoint is written, and evaluation merges
both ranks' results."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Tuple

import pytest
import torch
from mmengine.config import Config
from test_reliability import logged

from conftest import REPO, finish, kill_while_writing, output
from convnext_dense.checkpoint import read_checkpoint
from convnext_dense.engine.resume import POINTER
from convnext_dense.synthetic.ade import write_ade_demo
from convnext_dense.synthetic.coco import write_coco_demo
from convnext_dense.utils.atomic import PARTIAL_SUFFIX

CONFIGS = REPO / 'tests' / 'configs'
NUM_VAL = 3  # odd: the sampler pads rank 1's share, and the merge must drop the padding again


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_env(env: dict) -> dict:
    """The environment of a ``tools/dist_train.sh`` run: this checkout and the probes importable, one thread per
    process, a free port."""
    return dict(env, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / 'tests')]), OMP_NUM_THREADS='1',
                MASTER_PORT=str(free_port()), PYTHON=sys.executable)


def dist_train(config: Path, work_dir: Path, env: dict) -> str:
    out = subprocess.run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(work_dir)], cwd=REPO,
                         env=dist_env(env), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    return out.stdout + out.stderr


@pytest.fixture(scope='module')
def trained(tmp_path_factory) -> Callable[[str], Tuple[Path, dict]]:
    """The uninterrupted 2-process run of ``ddp_{toolkit}.py``: its work dir and environment, run once per module
    (the kill test compares with the segmentation run)."""
    runs: Dict[str, Tuple[Path, dict]] = {}

    def run(toolkit: str) -> Tuple[Path, dict]:
        if toolkit not in runs:
            root = tmp_path_factory.mktemp(toolkit)
            data = root / 'data'
            if toolkit == 'det':
                write_coco_demo(str(data), num_train=4, num_val=NUM_VAL, seed=0, size=64)
                env = dict(os.environ, COCO_DEMO_ROOT=f'{data}/')
            else:
                write_ade_demo(str(data), num_train=4, num_val=NUM_VAL, seed=0, size=64)
                env = dict(os.environ, ADE_DEMO_ROOT=str(data))
            dist_train(CONFIGS / f'ddp_{toolkit}.py', root / 'work', env)
            runs[toolkit] = root / 'work', env
        return runs[toolkit]
    return run


@pytest.mark.parametrize('toolkit', ['det', 'seg'])
def test_two_gloo_processes_train_in_lockstep_and_merge_evaluation(toolkit, trained):
    cfg = Config.fromfile(str(CONFIGS / f'ddp_{toolkit}.py'))
    assert not cfg.get('find_unused_parameters', False)
    work_dir, _ = trained(toolkit)

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


# ----------------------------------------------------------------------------------------------------------------
# Killed multi-process runs resume to the uninterrupted run
# ----------------------------------------------------------------------------------------------------------------

def start(work_dir: Path, env: dict) -> subprocess.Popen:
    """``bash tools/dist_train.sh ddp_seg.py 2 --work-dir WORK_DIR --resume auto`` in a session of its own: the
    command a requeued cluster job runs, each time."""
    log = tempfile.TemporaryFile(mode='w+')
    proc = subprocess.Popen(['bash', 'tools/dist_train.sh', str(CONFIGS / 'ddp_seg.py'), '2', '--work-dir',
                             str(work_dir), '--resume', 'auto'], cwd=REPO, env=dist_env(env), stdout=log,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    proc.log = log
    return proc


def kill_job(proc: subprocess.Popen) -> None:
    """SIGKILL torchrun and its workers (each in a session of its own), as a cluster scheduler ends a job."""
    children = Path(f'/proc/{proc.pid}/task/{proc.pid}/children').read_text().split()
    for pid in [proc.pid, *map(int, children)]:
        os.kill(pid, signal.SIGKILL)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, output(proc)[-3000:]
        time.sleep(0.05)
    return path.read_text()


def test_killed_rank_and_killed_job_resume_to_the_uninterrupted_run(trained):
    """The same command three times in one work dir (6 iterations, checkpoints at 2, 4, 6, one kept): rank 1 is
    SIGKILLed before iteration 4; then the whole job is SIGKILLed while rank 0 writes iter_4; then it runs to the end.
    Each start resumes from iter_2; every logged loss equals the uninterrupted run's, and both ranks end with its
    weights."""
    reference, env = trained('seg')
    work = reference.parent / 'killed'
    runs = [start(work, dict(env, PAUSE_RANK='1', PAUSE_AT='3'))]
    os.kill(int(wait_for(work / 'pause_rank1.pid', runs[0])), signal.SIGKILL)
    out = finish(runs[0], ok=False)
    assert f"resume='auto': nothing to resume from in {work} (no last_checkpoint): starting fresh" in out
    assert 'exitcode  : -9' in out  # torchrun reports rank 1's SIGKILL
    assert (work / POINTER).read_text() == str(work / 'iter_2.pth') and not (work / 'iter_4.pth').exists()

    fifo = work / f'iter_4.pth{PARTIAL_SUFFIX}'
    os.mkfifo(fifo)
    runs.append(start(work, env))
    partial = kill_while_writing(runs[1], fifo, kill=lambda: kill_job(runs[1]))
    fifo.unlink()
    fifo.write_bytes(partial)  # what the kill leaves: a truncated partial file
    assert (work / POINTER).read_text() == str(work / 'iter_2.pth') and not (work / 'iter_4.pth').exists()

    runs.append(start(work, env))
    finish(runs[2])
    (expected,) = logged(reference)
    for proc in runs[1:]:
        assert f'Auto resumed from the latest checkpoint {work}/iter_2.pth' in output(proc)
    losses = logged(work)
    assert [sorted(run) for run in losses] == [[1, 2, 3], [3, 4], [3, 4, 5, 6]]
    for run in losses:
        for it, scalars in run.items():
            assert abs(scalars['loss'] - expected[it]['loss']) <= 1e-6, (it, scalars['loss'], expected[it]['loss'])
    final = torch.load(reference / 'rank0_after.pth')
    for rank in (0, 1):
        weights = torch.load(work / f'rank{rank}_after.pth')
        assert weights.keys() == final.keys()
        assert all(torch.allclose(weights[k], final[k], atol=1e-6) for k in final), rank
    assert sorted(p.name for p in work.glob('*.pth*') if not p.name.startswith('rank')) == ['iter_6.pth']
