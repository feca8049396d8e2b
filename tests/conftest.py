"""What the tests share: the repository root, the tiny arch, running tools (to the end, or killed mid-write), reading
a config once, random weights, and tiny generated datasets in the demo configs' layouts.

pytest puts this folder on ``sys.path``, so test modules import these names with ``from conftest import ...``.
"""
import copy
import functools
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Tuple

import pytest
import torch
from mmengine.config import Config
from torch import nn

from convnext_dense.synthetic.ade import write_ade_demo
from convnext_dense.synthetic.coco import write_coco_demo

REPO = Path(__file__).resolve().parents[1]
TINY = dict(depths=(1, 1, 2, 1), channels=(8, 16, 24, 32))  # four stages, one with two blocks, in a few KB
# What the shipped configs read from the environment when they are parsed: weights and data roots.
CONFIG_VARIABLES = ('CONVNEXT_PRETRAINED', 'COCO_ROOT', 'COCO_DEMO_ROOT', 'ADE20K_ROOT', 'ADE_DEMO_ROOT')


def run_tool(*args: str, env: Optional[dict] = None) -> str:
    """Run ``python ARGS`` in the repository root; its output (stdout, then stderr), after checking it succeeded."""
    out = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


def tool(*args: str, env: dict) -> subprocess.Popen:
    """Start ``python ARGS`` in its own process group, single-threaded (deterministic, and the cores are shared)."""
    log = tempfile.TemporaryFile(mode='w+')  # a file, not a pipe: a long log never blocks the tool
    proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=dict(env, OMP_NUM_THREADS='1'), stdout=log,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    proc.log = log
    return proc


def output(proc: subprocess.Popen) -> str:
    proc.log.seek(0)
    return proc.log.read()


def finish(proc: subprocess.Popen, ok: bool = True) -> str:
    """Wait for a ``tool`` run; its output, after checking that it succeeded (``ok``) or failed."""
    proc.wait(timeout=300)
    out = output(proc)
    assert (proc.returncode == 0) == ok, out[-4000:]
    return out


def last_line(out: str) -> str:
    return out.strip().splitlines()[-1]


def raised(kind: str) -> str:
    """A regex of how the last line of a traceback names ``kind``, a class of ``convnext_dense.utils.errors`` (with
    its module, as Python prints a class that is not a built-in)."""
    return rf'(?:convnext_dense\.utils\.errors\.)?{kind}'


def kill_while_writing(proc: subprocess.Popen, fifo: Path, timeout: float = 240,
                       kill: Optional[Callable[[], None]] = None) -> bytes:
    """SIGKILL ``proc`` while it is writing into ``fifo`` (a named pipe where it will write a file).

    The writer blocks once the pipe holds 64 KiB, so the kill lands in the middle of the write, every time. ``kill``
    replaces the default SIGKILL to ``proc``'s process group (e.g. to kill processes in sessions of their own).
    """
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader exists, so the writer's open() does not block
    received = b''
    deadline = time.monotonic() + timeout
    try:
        while len(received) < 4096:
            assert proc.poll() is None, 'the run ended before writing: ' + output(proc)[-3000:]
            assert time.monotonic() < deadline, 'no write started'
            try:
                received += os.read(fd, 4096 - len(received))
            except BlockingIOError:  # the writer has opened the file but not written yet
                pass
            time.sleep(0.02)
        if kill:
            kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        os.close(fd)
    return received


@functools.lru_cache(maxsize=None)
def _parse(path: str, env: Tuple[Tuple[str, str], ...]) -> Config:
    return Config.fromfile(path)


def read_config(path: os.PathLike) -> Config:
    """A fresh copy of a config file as it reads with the current values of ``CONFIG_VARIABLES`` (each file is
    parsed once per set of values: parsing dominates the time of the config tests)."""
    return copy.deepcopy(_parse(str(path), tuple((var, os.environ.get(var, '')) for var in CONFIG_VARIABLES)))


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random values everywhere, also where the init is a constant (norms, layer scale, GRN); the mode is kept."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 + (1.0 if p.dim() == 1 else 0.0))
    return model


@pytest.fixture
def default_paths(monkeypatch) -> None:
    """None of ``CONFIG_VARIABLES`` set: the configs read their default paths."""
    for var in CONFIG_VARIABLES:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def seg_env(tmp_path) -> dict:
    write_ade_demo(str(tmp_path / 'ade'), num_train=4, num_val=2, seed=0, size=64)
    return dict(os.environ, ADE_DEMO_ROOT=str(tmp_path / 'ade'))


@pytest.fixture
def det_env(tmp_path) -> dict:
    write_coco_demo(str(tmp_path / 'coco'), num_train=4, num_val=2, seed=0, size=64)
    return dict(os.environ, COCO_DEMO_ROOT=f'{tmp_path / "coco"}/')
