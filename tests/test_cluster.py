"""Training that survives the cluster, through the real tools on the tiny detector (3 epochs; 4 iterations each in
one process, 2 per rank in two gloo processes): SIGTERM and SIGUSR1 end a run after the current iteration with a
checkpoint of it and exit code 75, a second signal ends it at once, ``--resume auto`` (ours, and mmdet's own
tools/train.py) continues inside the epoch with the uninterrupted run's losses, a stuck rank (of a resumed job) is
named by the watchdog within its timeout, and FSDP (configs/_base_/fsdp.py) trains with DDP's losses on half the
state per rank, saves whole checkpoints when stopped and resumes from them. (A rank that dies ends the job with its
name: test_distributed's killed-rank test.)"""
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Dict, List

import pytest
import torch
from test_distributed import dist_env
from test_reliability import logged
from test_stock_tools import stock_tool

from conftest import REPO, output, tool
from convnext_dense.checkpoint import read_checkpoint
from convnext_dense.engine.hooks.preemption_hook import PREEMPTED_EXIT_CODE, PreemptionHook
from convnext_dense.engine.hooks.watchdog_hook import STUCK_EXIT_CODE, WatchdogHook, describe_stuck
from convnext_dense.engine.resume import POINTER
from convnext_dense.synthetic.coco import write_coco_demo

CONFIG = REPO / 'tests' / 'configs' / 'preempt_det.py'
FSDP = REPO / 'tests' / 'configs' / 'fsdp_det.py'
TOL = 1e-5


def dist_train(work_dir: Path, env: dict, *options: str, config: Path = CONFIG) -> subprocess.Popen:
    """``bash tools/dist_train.sh CONFIG 2 --work-dir WORK_DIR OPTIONS``, started."""
    log = tempfile.TemporaryFile(mode='w+')
    proc = subprocess.Popen(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(work_dir), *options],
                            cwd=REPO, env=dist_env(env), stdout=log, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    proc.log = log
    return proc


def train(work_dir: Path, env: dict, *options: str, script: str = 'tools/train.py') -> subprocess.Popen:
    return tool(script, str(CONFIG), '--work-dir', str(work_dir), *options, env=dist_env(env))


def signal_at(rank: int, iteration: int, name: str, **more: str) -> Dict[str, str]:
    return dict(SIGNAL_RANK=str(rank), SIGNAL_AT=str(iteration), SIGNAL=name, **more)


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> Dict[str, object]:
    """Every run of this module, the independent ones started together and each resume as soon as its first part
    ends: the uninterrupted runs (one process, two); a one-process run sent SIGTERM in iteration 6 and resumed by
    mmdet's tools/train.py; a run sent SIGUSR1 twice; a two-process job stopped by SIGUSR1 sent to torchrun in
    iteration 3, resumed, and then hung by its rank 1 before iteration 6; an FSDP job whose rank 1 is sent SIGTERM in
    iteration 3, then resumed to the end."""
    root = tmp_path_factory.mktemp('preempt')
    write_coco_demo(str(root / 'coco'), num_train=4, num_val=2, seed=0, size=64)
    env = dict(os.environ, COCO_DEMO_ROOT=f'{root / "coco"}/')
    one, two, fsdp = root / 'one', root / 'two', root / 'fsdp'
    independent = {
        'reference one': train(root / 'reference_one', env),
        'reference two': dist_train(root / 'reference_two', env),
        'twice': train(root / 'twice', dict(env, **signal_at(0, 2, 'SIGUSR1', SIGNAL_COUNT='2'))),
    }
    first = {
        'one': train(one, dict(env, **signal_at(0, 6, 'SIGTERM'))),
        'two': dist_train(two, dict(env, **signal_at(1, 3, 'SIGUSR1', SIGNAL_TARGET='parent'))),
        'fsdp': dist_train(fsdp, dict(env, **signal_at(1, 3, 'SIGTERM')), config=FSDP),
    }
    resume: Dict[str, Callable[[], subprocess.Popen]] = {
        'one': lambda: train(one, env, '--resume', 'auto', script=str(stock_tool('mmdet', 'train.py'))),
        # the watchdog's timeout above the slowest step of a loaded machine; the checkpoint it names: epoch 2's
        'two': lambda: dist_train(two, dict(env, PAUSE_RANK='1', PAUSE_AT='5'), '--resume', 'auto', '--cfg-options',
                                  'watchdog_timeout=10', 'default_hooks.checkpoint.interval=1'),
        'fsdp': lambda: dist_train(fsdp, env, '--resume', 'auto', config=FSDP),
    }
    result: Dict[str, object] = dict(root=root)
    resumed: Dict[str, subprocess.Popen] = {}
    deadline = time.monotonic() + 300
    while first or resumed:
        assert time.monotonic() < deadline, f'still running: {sorted(first)} {sorted(resumed)}'
        for name, proc in [*first.items(), *resumed.items()]:
            if proc.poll() is None:
                continue
            if first.get(name) is proc:
                del first[name]
                result[name] = [(proc.returncode, output(proc))]
                pointer = root / name / POINTER  # before the resume moves it
                result[f'{name} pointer'] = pointer.read_text() if pointer.is_file() else None
                resumed[name] = resume[name]()
            else:
                del resumed[name]
                result[name].append((proc.returncode, output(proc), time.time()))
        time.sleep(0.1)
    for name, proc in independent.items():
        result[name] = (proc.wait(timeout=300), output(proc))
    return result


def assert_losses_equal(resumed: List[Dict[int, dict]], expected: Dict[int, dict]) -> None:
    for run in resumed:
        for it, scalars in run.items():
            assert abs(scalars['loss'] - expected[it]['loss']) <= TOL, (it, scalars['loss'], expected[it]['loss'])


def test_sigterm_mid_epoch_saves_and_mmdets_train_tool_resumes_exactly(runs):
    root = runs['root']
    work = root / 'one'
    (code, out), (resumed_code, resumed_out, _) = runs['one']
    assert code == PREEMPTED_EXIT_CODE, out[-3000:]
    assert (f'SIGTERM received: stopped after iteration 6 (epoch 2), checkpoint {work}/iter_6.pth; the same command '
            f'with --resume auto continues from it; exit code {PREEMPTED_EXIT_CODE}') in out
    checkpoint = read_checkpoint(work / 'iter_6.pth')  # complete, and what last_checkpoint named
    assert checkpoint['meta']['epoch'] == 1 and checkpoint['meta']['iter'] == 6
    assert len(checkpoint['meta']['train_state']['random_states']) == 1
    assert resumed_code == 0, resumed_out[-3000:]
    assert 'resuming inside epoch 2: its first 2 of 4 batches are skipped unloaded' in resumed_out
    (expected,) = logged(root / 'reference_one')
    losses = logged(work)
    assert [sorted(run) for run in losses] == [list(range(1, 7)), list(range(7, 13))]  # exactly the remaining ones
    assert_losses_equal(losses, expected)
    final, reference = (read_checkpoint(path / 'epoch_3.pth')['state_dict'] for path in (work, root / 'reference_one'))
    assert final.keys() == reference.keys()
    assert all(torch.allclose(final[k].float(), reference[k].float(), atol=TOL) for k in final)


def test_second_signal_exits_at_once_without_a_checkpoint(runs):
    code, out = runs['twice']
    assert code == -signal.SIGUSR1, out[-3000:]
    assert 'second SIGUSR1: exiting at once, without a checkpoint' in out
    assert not list((runs['root'] / 'twice').glob('iter_*.pth'))


def test_signal_to_torchrun_stops_every_rank_resumes_exactly_and_a_stuck_rank_is_named(runs):
    root = runs['root']
    work = root / 'two'
    (first, first_out), (second, second_out, ended) = runs['two']
    # SIGUSR1 to torchrun reaches the ranks only with dist_train.sh's --signals-to-handle; without, torchrun dies
    assert first != 0 and 'SIGUSR1 received by rank 1: stopped after iteration 3 (epoch 2), checkpoint ' \
                          f'{work}/iter_3.pth' in first_out, first_out[-3000:]
    assert runs['two pointer'] == str(work / 'iter_3.pth')
    assert len(read_checkpoint(work / 'iter_3.pth')['meta']['train_state']['random_states']) == 2  # each rank's
    (expected,) = logged(root / 'reference_two')
    losses = logged(work)
    assert [sorted(run) for run in losses] == [[1, 2, 3], [4, 5]]  # then rank 1 hangs before iteration 6
    assert_losses_equal(losses, expected)
    assert runs['reference two'][0] == 0
    assert ('watchdog: rank 1 made no progress in 10 s while the others wait for it (rank 0 in iteration 6; rank 1 '
            f'finished iteration 5); the last complete checkpoint is {work}/epoch_2.pth; --resume auto continues '
            'from it; ending the job') in second_out, second_out[-3000:]
    assert f'exitcode  : {STUCK_EXIT_CODE}' in second_out
    seconds = ended - (work / 'pause_rank1.pid').stat().st_mtime  # from the moment rank 1 hung
    assert seconds < 50, seconds  # the hung rank sleeps 60 s: the watchdog, not the sleep, ended the job
    assert read_checkpoint(work / 'epoch_2.pth')['meta']['epoch'] == 2


def held_bytes(work_dir: Path) -> List[int]:
    """Per rank, the bytes of parameters + optimizer state it held at the end (tests/ddp_probes.StateBytesHook)."""
    return [sum(json.loads((work_dir / f'rank{rank}_bytes.json').read_text()).values()) for rank in (0, 1)]


def test_fsdp_trains_like_ddp_on_half_the_state_saves_whole_and_resumes(runs):
    root = runs['root']
    work, reference = root / 'fsdp', root / 'reference_two'
    (first, first_out), (resumed, resumed_out, _) = runs['fsdp']
    assert first != 0 and f'SIGTERM received by rank 1: stopped after iteration 3 (epoch 2), checkpoint ' \
                          f'{work}/iter_3.pth' in first_out, first_out[-3000:]
    assert f'exitcode  : {PREEMPTED_EXIT_CODE}' in first_out  # torchrun's summary of the ranks, which stopped
    whole = read_checkpoint(work / 'iter_3.pth')['state_dict']  # gathered on rank 0: the DDP run's layout
    ddp = read_checkpoint(reference / 'epoch_3.pth')['state_dict']
    assert {k: v.shape for k, v in whole.items()} == {k: v.shape for k, v in ddp.items()}
    assert resumed == 0, resumed_out[-3000:]
    assert 'resuming inside epoch 2: its first 1 of 2 batches are skipped unloaded' in resumed_out
    (expected,) = logged(reference)
    losses = logged(work)
    assert [sorted(run) for run in losses] == [[1, 2, 3], [4, 5, 6]]
    assert_losses_equal(losses, expected)  # DDP's, from the first iteration on, across the stop
    final = read_checkpoint(work / 'epoch_3.pth')['state_dict']
    assert all(torch.allclose(final[k].float(), ddp[k].float(), atol=TOL) for k in ddp)
    sharded, replicated = held_bytes(work), held_bytes(reference)
    print(f'parameters + optimizer state per rank: FSDP {sharded} B, DDP {replicated} B')
    assert all(0.45 <= s / r <= 0.6 for s, r in zip(sharded, replicated)), (sharded, replicated)


def test_watchdog_lines_and_bad_settings():
    assert describe_stuck({0: 9, 1: 9, 2: 9}, 60, None) == (
        'watchdog: ranks 0, 1, 2 made no progress in 60 s (rank 0 in iteration 5; rank 1 in iteration 5; rank 2 in '
        'iteration 5); no checkpoint had been written; ending the job')
    assert describe_stuck({0: 10, 1: 7, 2: 7}, 1.5, '/w/iter_4.pth').startswith(
        'watchdog: ranks 1, 2 made no progress in 1.5 s while the others wait for them (rank 0 finished iteration 5; '
        'rank 1 in iteration 4; rank 2 in iteration 4); the last complete checkpoint is /w/iter_4.pth')
    for bad in (-1, '10', True):
        with pytest.raises(ValueError, match=rf"watchdog_timeout={bad!r}; valid: seconds > 0, or 0 to turn"):
            WatchdogHook().before_train(SimpleNamespace(cfg=dict(watchdog_timeout=bad)))
    with pytest.raises(ValueError, match='default_hooks.checkpoint, which must be convnext_dense.AtomicCheckpointHook'):
        PreemptionHook().before_train(SimpleNamespace(hooks=[]))
