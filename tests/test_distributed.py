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

import pytest
import torch
from mmengine.config import Config
from test_reliability import logged

from conftest import REPO, finish, kill_while_writing, output
from convnext_dense.checkpoint import read_checkpoint
from convnext_dense.hooks import PARTIAL_SUFFIX, POINTER
from convnext_dense.synthetic.ade import write_ade_demo
from convnext_dense.synthetic.coco import write_coco_demo

CONFIGS = REPO / 'tests' / 'configs'
NUM_VAL = 3  # odd: the sampler pads rank 1's share, and the merge must drop the padding again


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_train(config: Path, work_dir: Path, env: dict) -> str:
    env = dict(env, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / 'tests')]), OMP_NUM_THREADS='1',
               MASTER_PORT=str(free_port()), PYTHON=sys.executable)
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


# ----------------------------------------------------------------------------------------------------------------
# Killed multi-process runs resume to the uninterrupted run
# ----------------------------------------------------------------------------------------------------------------

def start(work_dir: Path, env: dict) -> subprocess.Popen:
    """``bash tools/dist_train.sh ddp_seg.py 2 --work-dir WORK_DIR --resume auto`` in a session of its own: the
    command a requeued cluster job runs, each time."""
    log = tempfile.TemporaryFile(mode='w+')
    env = dict(env, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / 'tests')]), OMP_NUM_THREADS='1',
               MASTER_PORT=str(free_port()), PYTHON=sys.executable)
    proc = subprocess.Popen(['bash', 'tools/dist_train.sh', str(CONFIGS / 'ddp_seg.py'), '2', '--work-dir',
                             str(work_dir), '--resume', 'auto'], cwd=REPO, env=env, stdout=log,
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


def test_killed_rank_and_killed_job_resume_to_the_uninterrupted_run(tmp_path):
    """Three 2-process runs of 6 iterations (checkpoints at 2, 4, 6, one kept), side by side: uninterrupted; rank 1
    SIGKILLed before iteration 4; the whole job SIGKILLed while rank 0 writes iter_4. Each killed run is started
    again with the same command: it resumes from iter_2, logs the uninterrupted run's losses for iterations 3-6 and
    ends with its weights on both ranks."""
    write_ade_demo(str(tmp_path / 'data'), num_train=4, num_val=2, seed=0, size=64)
    env = dict(os.environ, ADE_DEMO_ROOT=str(tmp_path / 'data'))
    reference, rank, job = tmp_path / 'reference', tmp_path / 'rank', tmp_path / 'job'
    job.mkdir()
    fifo = job / f'iter_4.pth{PARTIAL_SUFFIX}'
    os.mkfifo(fifo)
    runs = [start(reference, env), start(rank, dict(env, PAUSE_RANK='1', PAUSE_AT='3')), start(job, env)]

    os.kill(int(wait_for(rank / 'pause_rank1.pid', runs[1])), signal.SIGKILL)
    partial = kill_while_writing(runs[2], fifo, kill=lambda: kill_job(runs[2]))
    fifo.unlink()
    fifo.write_bytes(partial)  # what the kill leaves: a truncated partial file
    first = {work_dir: finish(proc, ok=False) for work_dir, proc in ((rank, runs[1]), (job, runs[2]))}
    for work_dir in (rank, job):
        assert f"resume='auto': nothing to resume from in {work_dir} (no last_checkpoint): starting fresh" in \
            first[work_dir]
        assert (work_dir / POINTER).read_text() == str(work_dir / 'iter_2.pth')
        assert not (work_dir / 'iter_4.pth').exists()
    assert 'exitcode  : -9' in first[rank]  # torchrun reports rank 1's SIGKILL

    resumed = {work_dir: start(work_dir, env) for work_dir in (rank, job)}
    finish(runs[0])
    (expected,) = logged(reference)
    final = torch.load(reference / 'rank0_after.pth')
    for work_dir, proc in resumed.items():
        assert f'Auto resumed from the latest checkpoint {work_dir}/iter_2.pth' in finish(proc)
        losses = logged(work_dir)[-1]
        assert sorted(losses) == [3, 4, 5, 6]
        for it, scalars in losses.items():
            assert abs(scalars['loss'] - expected[it]['loss']) <= 1e-6, (work_dir.name, it)
        for r in (0, 1):
            weights = torch.load(work_dir / f'rank{r}_after.pth')
            assert all(torch.allclose(weights[k], final[k], atol=1e-6) for k in final), (work_dir.name, r)
        assert sorted(p.name for p in work_dir.glob('*.pth*') if not p.name.startswith('rank')) == ['iter_6.pth']
