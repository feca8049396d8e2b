"""Resume that never lies, crash-safe best checkpoints, and a full disk.

``--resume`` with nothing to resume from is an error naming the work dir, ``--resume auto`` starts fresh and says
so, a ``last_checkpoint`` naming a missing or truncated file is an error naming both with the newest complete
checkpoint suggested (through our ``tools/train.py`` and mmseg's own: the check lives in the config-declared
``AtomicCheckpointHook``); ``save_best`` files are written under a partial name and the previous best is deleted only
afterwards; a checkpoint write that fails for lack of space stops the run with one line, the previous checkpoint
and ``last_checkpoint`` intact.
"""
import os
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, Tuple

import pytest
import torch
from mmengine.logging import MessageHub, MMLogger
from test_stock_tools import stock_tool

from conftest import REPO, finish, last_line, tool
from convnext_dense.checkpoint import read_checkpoint
from convnext_dense.engine.hooks import AtomicCheckpointHook
from convnext_dense.engine.resume import POINTER, check_resume, is_complete, newest_complete
from convnext_dense.synthetic.ade import write_ade_demo
from convnext_dense.utils.atomic import PARTIAL_SUFFIX

SEG = REPO / 'tests' / 'configs' / 'tiny_seg.py'


def checkpoints(work_dir: Path) -> None:
    """iter_2.pth complete, iter_4.pth truncated (as a kill or a full disk leaves it under mmengine's own hook)."""
    work_dir.mkdir(exist_ok=True)
    torch.save({'meta': {'iter': 2}, 'state_dict': {'w': torch.zeros(1000)}}, work_dir / 'iter_2.pth')
    data = (work_dir / 'iter_2.pth').read_bytes()
    (work_dir / 'iter_4.pth').write_bytes(data[:len(data) // 2])


def test_what_resume_resumes_from(tmp_path):
    work = tmp_path / 'work'
    with pytest.raises(FileNotFoundError, match=rf'--resume: nothing to resume from in {work}: .*does not exist; '
                                                r"'--resume auto' starts fresh"):
        check_resume(str(work), True, None)
    assert check_resume(str(work), 'auto', None) == \
        f"resume='auto': nothing to resume from in {work} (no last_checkpoint): starting fresh"
    assert check_resume(str(work), True, '/some/file.pth') is None  # --resume CKPT: the reader checks the file
    with pytest.raises(ValueError, match=r"resume='yes'; valid: True, False or 'auto'"):
        check_resume(str(work), 'yes', None)

    checkpoints(work)
    assert is_complete(str(work / 'iter_2.pth')) and not is_complete(str(work / 'iter_4.pth'))
    assert newest_complete(str(work)) == str(work / 'iter_2.pth')
    with pytest.raises(FileNotFoundError, match=rf'nothing to resume from in {work}: it has no last_checkpoint\. '
                                                rf'the newest complete checkpoint in {work} is {work}/iter_2\.pth'):
        check_resume(str(work), True, None)
    for resume in (True, 'auto'):  # a broken pointer is an error either way: there is something, and it is bad
        (work / POINTER).write_text(str(work / 'iter_6.pth'))
        with pytest.raises(FileNotFoundError, match=rf"{work}/last_checkpoint names '{work}/iter_6\.pth', which "
                                                    rf'does not exist; .* is {work}/iter_2\.pth: resume from it '
                                                    rf'with --resume {work}/iter_2\.pth'):
            check_resume(str(work), resume, None)
        (work / POINTER).write_text(str(work / 'iter_4.pth'))
        with pytest.raises(ValueError, match=rf'{work}/last_checkpoint names {work}/iter_4\.pth, which is truncated '
                                             rf'\(written only in part\); .* is {work}/iter_2\.pth'):
            check_resume(str(work), resume, None)
    (work / POINTER).write_text(str(work / 'iter_2.pth'))
    assert check_resume(str(work), True, None) is None


DISK_FULL = '''
import os, resource, signal, sys
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

class DiskFull(Hook):
    """After iter_2.pth is written, no file may grow past half its size: a disk that has filled up."""
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == 2:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of a kill
            limit = os.path.getsize(os.path.join(runner.work_dir, 'iter_2.pth')) // 2
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

cfg = Config.fromfile(sys.argv[1])
cfg.work_dir = sys.argv[2]
runner = Runner.from_cfg(cfg)
runner.register_hook(DiskFull(), priority='LOWEST')  # after the checkpoint hook
runner.train()
'''


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> Dict[str, Tuple[Path, subprocess.Popen]]:
    """The three runs of the tests below, started together (each is one process): bare --resume in an empty work dir
    (our tool), a pointer to a truncated file (mmseg's own tools/train.py), and a disk that fills up."""
    root = tmp_path_factory.mktemp('resume')
    write_ade_demo(str(root / 'ade'), num_train=4, num_val=2, seed=0, size=64)
    env = dict(os.environ, ADE_DEMO_ROOT=str(root / 'ade'))
    checkpoints(root / 'broken')
    (root / 'broken' / POINTER).write_text(str(root / 'broken' / 'iter_4.pth'))
    return {
        'empty': (root / 'empty', tool('tools/train.py', str(SEG), '--work-dir', str(root / 'empty'), '--resume',
                                       env=env)),
        'broken': (root / 'broken', tool(str(stock_tool('mmseg', 'train.py')), str(SEG), '--work-dir',
                                         str(root / 'broken'), '--resume', env=env)),
        'disk full': (root / 'full', tool('-c', DISK_FULL, str(SEG), str(root / 'full'), env=env)),
    }


def test_resume_errors_through_our_train_tool_and_mmsegs(runs):
    (empty, ours), (broken, mmseg) = runs['empty'], runs['broken']
    assert re.fullmatch(rf'convnext_dense\.utils\.errors\.MissingFileError: --resume: nothing to resume from in '
                        rf'{empty}: it has no last_checkpoint\. .*', last_line(finish(ours, ok=False)))
    assert re.fullmatch(rf'convnext_dense\.utils\.errors\.CheckpointError: {broken}/last_checkpoint names '
                        rf'{broken}/iter_4\.pth, which is truncated .* resume from it with --resume '
                        rf'{broken}/iter_2\.pth', last_line(finish(mmseg, ok=False)))


class Runner(SimpleNamespace):
    """What ``CheckpointHook._save_best_checkpoint`` uses of a Runner; ``save_checkpoint`` records the folder."""

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        self.seen.append((filename, sorted(p.name for p in Path(out_dir).iterdir())))
        torch.save({'meta': {'iter': self.iter}}, Path(out_dir) / filename)


def test_best_checkpoint_is_written_whole_before_the_previous_best_goes(tmp_path):
    hook = AtomicCheckpointHook(interval=100, by_epoch=False, save_best='acc', rule='greater')
    runner = Runner(work_dir=str(tmp_path), epoch=0, iter=2, seen=[], logger=MMLogger.get_instance('best'),
                    message_hub=MessageHub.get_instance('best'), cfg={})
    hook.before_train(runner)
    hook._save_best_checkpoint(runner, {'acc': 0.5})
    runner.iter = 4
    hook._save_best_checkpoint(runner, {'acc': 0.7})
    first, second = 'best_acc_iter_2.pth', 'best_acc_iter_4.pth'
    assert runner.seen == [(first + PARTIAL_SUFFIX, []), (second + PARTIAL_SUFFIX, [first])]  # the old one was kept
    assert sorted(p.name for p in tmp_path.iterdir()) == [second]
    assert read_checkpoint(tmp_path / second)['meta']['iter'] == 4


def test_disk_full_stops_the_run_and_keeps_the_previous_checkpoint(runs):
    work, proc = runs['disk full']
    out = finish(proc, ok=False)
    assert re.fullmatch(rf'OSError: \[Errno 27\] could not write checkpoint {work}/iter_4\.pth: File too large; '
                        rf'training stopped and the previous checkpoint, {work}/iter_2\.pth, and last_checkpoint are '
                        r'kept\. Free space on that disk .* and continue with --resume', last_line(out))
    assert (work / POINTER).read_text() == str(work / 'iter_2.pth')
    assert read_checkpoint(work / 'iter_2.pth')['meta']['iter'] == 2
    assert sorted(p.name for p in work.glob('*.pth*')) == ['iter_2.pth']  # no partial file left to mislead
