"""The run-time guarantees hold through OpenMMLab's own entry points, not only through ours.

The configs declare the guarantees (``configs/_base_/reliability.py``): a crash-safe checkpoint hook, a stop on a
non-finite loss, a check that a loaded checkpoint fits the model, and a check of every data file at start-up; so
they must hold whatever builds the Runner. The installed ``mmdet`` and ``mmseg`` ``tools/train.py`` and a bare
``Runner.from_cfg(cfg).train()`` each prove all four on the test configs (which inherit the shipped bases):

* a SIGKILL while a checkpoint is being written leaves ``last_checkpoint`` naming a complete file, which the same
  entry point then resumes from;
* a non-finite loss stops the run with our one-line message, before a checkpoint of the diverged weights is written;
* a ``load_from`` checkpoint of another (wider) ConvNeXt arch is refused with our message, before training;
* a missing data file fails at start-up with our one-line error, before any training iteration.

Then mmseg's stock ``tools/test.py --tta`` and both toolkits' inferencers run on the same configs with a checkpoint
trained above. (mmdet's ``tools/test.py --tta`` is not run: mmdet 3.3.0 has no test-time augmentation for instance
masks, and the det configs are Cascade Mask R-CNN. Its flip TTA fails inside mmdet, in
``CascadeRoIHead.predict_mask`` -> ``merge_aug_masks``, which slices a tensor with step -1 (``ValueError: step must
be greater than zero``); past that, ``DetTTAModel`` asserts there are no masks.)

Speed (the suite runs on 2 shared cores): every run is a few iterations on 4 tiny images, each process start costs
about 5 s of imports, so the three runs of ``Runner.from_cfg`` that follow its kill share one process (as API calls
in one script can), and the 11 processes are started from one module-scoped fixture into a pool of 3 threads. A test
waits only for the runs it checks; a run that fails unexpectedly fails the tests that read it, not the others.
"""
import importlib.util
import json
import math
import os
import re
import signal
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence

import cv2
import matplotlib
import numpy as np
import pytest
import torch

from conftest import REPO, finish, kill_while_writing, last_line, raised, tool
from convnext_dense import ConvNeXt
from convnext_dense.checkpoint import read_checkpoint
from convnext_dense.engine.resume import POINTER
from convnext_dense.synthetic.ade import CLASSES, write_ade_demo
from convnext_dense.synthetic.coco import write_coco_demo
from convnext_dense.synthetic.scenes import SHAPES
from convnext_dense.utils.atomic import PARTIAL_SUFFIX

SEG = REPO / 'tests' / 'configs' / 'tiny_seg.py'  # inherits configs/ade20k/demo_upernet_convnext.py
DET = REPO / 'tests' / 'configs' / 'tiny_det.py'  # inherits configs/coco/demo_cascade_convnext.py
WIDER = dict(depths=(1, 1, 1, 1), channels=(16, 32, 48, 64))  # the test configs' arch has channels (8, 16, 24, 32)
PHOTO = Path(matplotlib.get_data_path()) / 'sample_data' / 'grace_hopper.jpg'  # a real photo, 512 x 600 px
ROOT_VARIABLE = {'det': 'COCO_DEMO_ROOT', 'seg': 'ADE_DEMO_ROOT'}  # the configs read their data root from these

# What Runner.from_cfg users write: parse, override, build, train; for each run in argv[1] (a JSON list), in turn.
# An exception is printed as Python prints an uncaught one (its last line: "Type: message"), then the next run
# starts; each run has its own experiment_name, hence its own logger, message hub and visualizer.
MARK = '### run: '
RUNNER_SCRIPT = f'''
import json, os, sys, traceback
from mmengine.config import Config
from mmengine.runner import Runner
for run in json.loads(sys.argv[1]):
    print({MARK!r} + run['name'], flush=True)
    os.environ.update(run['data'])  # the config reads its data root when parsed
    cfg = Config.fromfile(run['config'])
    cfg.merge_from_dict(run['options'])
    cfg.work_dir, cfg.resume, cfg.experiment_name = run['work_dir'], run['resume'], run['name']
    try:
        Runner.from_cfg(cfg).train()
    except Exception:
        traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
'''


def stock_tool(package: str, name: str) -> Path:
    """``tools/NAME`` as installed with ``package`` (``site-packages/PACKAGE/.mim/tools``), without importing it."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f'{package} is not installed'
    path = Path(spec.origin).parent / '.mim' / 'tools' / name
    assert path.is_file(), f'{package} was installed without its tools: {path} is missing'
    return path


# ----------------------------------------------------------------------------------------------------------------
# The entry points and the runs they make
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One training run: its name, work dir, ``--cfg-options``, data roots (env variables), and whether it resumes."""
    name: str
    work_dir: Path
    data: Mapping[str, str]
    options: Mapping[str, object] = field(default_factory=dict)
    resume: bool = False


@dataclass(frozen=True)
class EntryPoint:
    """One way to train a config: a stock ``tools/train.py``, or ``Runner.from_cfg`` when ``script`` is None."""
    name: str
    config: Path
    script: Optional[Path]

    @property
    def toolkit(self) -> str:
        return 'det' if self.config == DET else 'seg'

    @property
    def slug(self) -> str:
        """The name as a file name."""
        return re.sub(r'\W+', '_', self.name)

    def start(self, runs: Sequence[Run]) -> subprocess.Popen:
        """Start ``runs`` in one process (only Runner.from_cfg takes more than one)."""
        if self.script is None:
            spec = [dict(name=run.name, config=str(self.config), work_dir=str(run.work_dir), data=dict(run.data),
                         options=dict(run.options), resume=run.resume) for run in runs]
            return tool('-c', RUNNER_SCRIPT, json.dumps(spec), env=dict(os.environ))  # json writes inf as Infinity
        (run,) = runs
        args = [str(self.script), str(self.config), '--work-dir', str(run.work_dir)]
        if run.options:  # the tools parse values with mmengine's DictAction: 'inf' is a float, 'False' a bool
            args += ['--cfg-options', *(f'{key}={value}' for key, value in run.options.items())]
        # last: mmdet's --resume takes an optional value, mmseg's none; bare, both resume from last_checkpoint
        return tool(*args, *['--resume'] * run.resume, env=dict(os.environ, **run.data))


MMDET_TOOL = EntryPoint('mmdet tools/train.py', DET, stock_tool('mmdet', 'train.py'))
MMSEG_TOOL = EntryPoint('mmseg tools/train.py', SEG, stock_tool('mmseg', 'train.py'))
RUNNER = EntryPoint('Runner.from_cfg', DET, None)  # the det config: its data names each image, so one can go missing
ENTRY_POINTS = (MMDET_TOOL, MMSEG_TOOL, RUNNER)
NAMES = [entry.name for entry in ENTRY_POINTS]
LATER = ('missing', 'wrong_arch', 'non_finite')  # the runs of each entry point besides the kill

# Checkpoints every 2 iterations, only the newest kept: mmengine's own hook would delete iter_2 before writing iter_4.
# tiny_seg does so already; tiny_det saves once per (4-iteration) epoch, so it gets the same by iteration.
KILL_OPTIONS: Dict[str, Dict[str, object]] = {
    'det': {'default_hooks.checkpoint.by_epoch': False, 'default_hooks.checkpoint.interval': 2,
            'default_hooks.checkpoint.max_keep_ckpts': 1},
    'seg': {},
}
# Resuming the killed run with an infinite loss weight: the first resumed iteration (3) has a non-finite loss. (A
# huge lr, as test_reliability uses, does not survive a resume: the optimizer's saved lr replaces it.) A checkpoint
# is due after every iteration, so a hook that stopped too late would leave iter_3.pth of the diverged weights.
NON_FINITE_OPTIONS: Dict[str, Dict[str, object]] = {
    'det': {**KILL_OPTIONS['det'], 'default_hooks.checkpoint.interval': 1,
            'model.rpn_head.loss_cls.loss_weight': math.inf},
    'seg': {'default_hooks.checkpoint.interval': 1, 'model.decode_head.loss_decode.loss_weight': math.inf},
}
# The image that goes missing: one named in instances_train2017.json; in mmseg's folder layout, where the samples are
# the images found in the folder, one whose label map stays (the dataset drops the sample; the check finds it).
MISSING = {'det': 'train2017/000000000003.png', 'seg': 'images/training/ADE_train_00000003.jpg'}
MISSING_ERROR = {
    'det': raised('DataError') + r': train_dataloader\.dataset: 1 of 4 samples have a bad file \(named by '
           r'\S*annotations/instances_train2017\.json\): (?P<path>\S+) does not exist\. Fix or remove them: they are '
           r'not skipped',
    'seg': raised('DataError') + r': train_dataloader\.dataset: 1 of 4 samples have a bad file: (?P<path>\S+) does '
           r'not exist \(its label map \S+ADE_train_00000003\.png does\)\. Fix or remove them: they are not skipped',
}


@dataclass
class AfterKill:
    """What a run killed while writing iter_4.pth left in its work dir, seen before anything else touched it."""
    returncode: int
    written: int  # bytes of iter_4 that had been written when the kill landed
    pointer: Optional[str]  # the text of last_checkpoint
    files: List[str]  # the checkpoint files, complete and partial
    iteration: Optional[int]  # meta.iter of the checkpoint that last_checkpoint names, read with our reader
    finite: bool  # all of its weights are finite


@dataclass
class Runs:
    """One entry point's work dir and runs; each future gives the run's output (the kill: what it left)."""
    work_dir: Path  # where it trained, was killed, and resumed
    kill: Future[AfterKill]
    non_finite: Future[str]
    wrong_arch: Future[str]
    missing: Future[str]


@dataclass
class Plan:
    entries: Dict[str, Runs]  # per entry point name
    tta: Future[str]  # mmseg's tools/test.py --tta with the mmseg tool's checkpoint


def killed_mid_save(entry: EntryPoint, run: Run) -> AfterKill:
    """Train until the run writes iter_4.pth (a FIFO, so the write blocks half-way) and SIGKILL it there."""
    run.work_dir.mkdir(parents=True)
    fifo = run.work_dir / f'iter_4.pth{PARTIAL_SUFFIX}'
    os.mkfifo(fifo)
    proc = entry.start([run])
    written = kill_while_writing(proc, fifo)
    pointer = (run.work_dir / POINTER).read_text() if (run.work_dir / POINTER).exists() else None
    files = sorted(p.name for p in run.work_dir.glob('*.pth*'))
    checkpoint = read_checkpoint(pointer) if pointer and Path(pointer).is_file() else None
    fifo.unlink()  # leave what a real kill leaves: a truncated partial file
    fifo.write_bytes(written)
    return AfterKill(proc.returncode, len(written), pointer, files,
                     checkpoint['meta']['iter'] if checkpoint else None,
                     bool(checkpoint) and all(torch.isfinite(v).all() for v in checkpoint['state_dict'].values()))


def wider_checkpoint(trained: Path, out: Path) -> Path:
    """``trained`` with its backbone replaced by a ConvNeXt of twice the width: the heads still fit the model, the
    backbone does not (so the fit check must name the arch, not report a file of another model)."""
    state = read_checkpoint(trained)['state_dict']
    backbone = {f'backbone.{key}': value for key, value in ConvNeXt(arch=WIDER).state_dict().items()}
    torch.save({'state_dict': {**backbone, **{k: v for k, v in state.items() if not k.startswith('backbone.')}},
                'meta': {}}, out)
    return out


def split_runs(out: str) -> Dict[str, str]:
    """The output of a Runner.from_cfg script, per run name."""
    return dict(part.split('\n', 1) for part in out.split(MARK)[1:])


def parts(combined: Future[Dict[str, str]], names: Sequence[str]) -> Dict[str, Future[str]]:
    """One future per run of a process that makes several."""
    futures: Dict[str, Future[str]] = {name: Future() for name in names}

    def done(future: Future) -> None:
        for name, part in futures.items():
            if future.exception() is not None:
                part.set_exception(future.exception())
            else:
                part.set_result(future.result()[name])
    combined.add_done_callback(done)
    return futures


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> Dict[str, Dict[str, str]]:
    """The data-root variables of two sets of tiny datasets: 'good', and 'missing' with one file of each deleted."""
    roots = {}
    for kind in ('good', 'missing'):
        root = tmp_path_factory.mktemp(f'{kind}_data')
        write_ade_demo(str(root / 'ade'), num_train=4, num_val=2, seed=0, size=64)
        write_coco_demo(str(root / 'coco'), num_train=4, num_val=2, seed=0, size=64)
        roots[kind] = dict(ADE_DEMO_ROOT=str(root / 'ade'), COCO_DEMO_ROOT=f'{root / "coco"}/')
    for toolkit, relative in MISSING.items():
        (Path(roots['missing'][ROOT_VARIABLE[toolkit]]) / relative).unlink()
    return roots


@pytest.fixture(scope='module')
def runs(data, tmp_path_factory) -> Iterator[Plan]:
    """Start all runs of this module, 3 processes at a time, and hand out their futures.

    The pool starts jobs in the order submitted, and a job that needs a checkpoint is submitted after the kill
    that writes it: a worker may wait for a kill that is running, never for one still queued (no deadlock).
    """
    base = tmp_path_factory.mktemp('stock_runs')
    good, missing = data['good'], data['missing']
    work_dirs = {entry.name: base / entry.slug for entry in ENTRY_POINTS}

    def trained(entry: EntryPoint) -> Path:
        kills[entry.name].result()  # raises what went wrong in the kill, if anything
        return work_dirs[entry.name] / 'iter_2.pth'

    def later_run(entry: EntryPoint, name: str) -> Run:
        """A missing file; a checkpoint of a wider arch (made from the kill's); resuming the kill, non-finite."""
        if name == 'missing':
            return Run(name, base / f'{entry.slug}_missing', missing)
        if name == 'wrong_arch':
            wider = wider_checkpoint(trained(entry), base / f'wider_{entry.slug}.pth')
            return Run(name, base / f'{entry.slug}_wrong_arch', good, {'load_from': str(wider)})
        trained(entry)
        return Run(name, work_dirs[entry.name], good, NON_FINITE_OPTIONS[entry.toolkit], resume=True)

    def tool_run(entry: EntryPoint, name: str) -> str:
        return finish(entry.start([later_run(entry, name)]), ok=False)

    def runner_runs() -> Dict[str, str]:
        outputs = split_runs(finish(RUNNER.start([later_run(RUNNER, name) for name in LATER])))
        assert sorted(outputs) == sorted(LATER), outputs.keys()
        return outputs

    def tta() -> str:
        return finish(tool(str(stock_tool('mmseg', 'test.py')), str(SEG), str(trained(MMSEG_TOOL)), '--tta',
                           '--work-dir', str(base / 'tta'), env=dict(os.environ, **good)))

    with ThreadPoolExecutor(max_workers=3) as pool:
        kills = {e.name: pool.submit(killed_mid_save, e, Run('kill', work_dirs[e.name], good, KILL_OPTIONS[e.toolkit]))
                 for e in ENTRY_POINTS}
        later: Dict[str, Dict[str, Future[str]]] = {e.name: {} for e in (MMDET_TOOL, MMSEG_TOOL)}
        for entry in (MMDET_TOOL, MMSEG_TOOL):  # first what needs no kill, while the kills run
            later[entry.name]['missing'] = pool.submit(tool_run, entry, 'missing')
        later[RUNNER.name] = parts(pool.submit(runner_runs), LATER)  # the longest job, early
        tta_run = pool.submit(tta)
        for name in ('wrong_arch', 'non_finite'):
            for entry in (MMDET_TOOL, MMSEG_TOOL):
                later[entry.name][name] = pool.submit(tool_run, entry, name)
        yield Plan({e.name: Runs(work_dirs[e.name], kills[e.name], **later[e.name]) for e in ENTRY_POINTS}, tta_run)


def training_started(out: str) -> bool:
    return 'Iter(train)' in out or 'Epoch(train)' in out


# ----------------------------------------------------------------------------------------------------------------
# The four guarantees, per entry point
# ----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('name', NAMES)
def test_kill_mid_save_leaves_a_loadable_last_checkpoint(name, runs):
    """Killed while writing iter_4 (only the newest checkpoint is to be kept): iter_2 survives whole, the pointer
    names it, and the same entry point resumes from it."""
    run = runs.entries[name]
    after = run.kill.result()
    assert after.returncode == -signal.SIGKILL and after.written > 0
    assert after.pointer == str(run.work_dir / 'iter_2.pth')
    assert after.files == ['iter_2.pth', f'iter_4.pth{PARTIAL_SUFFIX}']  # iter_4 never appeared under its name
    assert after.iteration == 2 and after.finite
    assert 'resumed epoch: 0, iter: 2' in run.non_finite.result()  # --resume / resume=True loaded it


@pytest.mark.parametrize('name', NAMES)
def test_non_finite_loss_stops_with_our_message(name, runs):
    """The first resumed iteration has a non-finite loss: the run stops there, naming it and the kept checkpoint,
    before a checkpoint of the diverged weights is written (one is due after every iteration)."""
    run = runs.entries[name]
    out = run.non_finite.result()
    good = run.work_dir / 'iter_2.pth'
    match = re.fullmatch(rf'FloatingPointError: non-finite loss at iteration 3: (?P<losses>.*); training stopped '
                         rf'and the last checkpoint, {re.escape(str(good))}, is kept\. Lower the learning rate, .*',
                         last_line(out))
    assert match, last_line(out)
    losses = dict(item.split('=') for item in match.group('losses').split(', '))
    assert 'loss' in losses and all(value in ('inf', 'nan') for value in losses.values()), losses
    assert (run.work_dir / POINTER).read_text() == str(good)
    assert not (run.work_dir / 'iter_3.pth').exists()
    assert read_checkpoint(good)['meta']['iter'] == 2


@pytest.mark.parametrize('name', NAMES)
def test_checkpoint_of_another_arch_is_refused(name, runs):
    """load_from a checkpoint whose backbone is twice as wide: refused, naming both archs, before training."""
    out = runs.entries[name].wrong_arch.result()
    assert re.fullmatch(r'convnext_dense\.utils\.errors\.CheckpointError: checkpoint \S+/wider_\w+\.pth: '
                        r'backbone\.downsample_layers\.0\.0\.weight has '
                        r'shape \(16, 3, 4, 4\) in the file but \(8, 3, 4, 4\) in the model; the file holds ConvNeXt '
                        r'no arch in ARCH_SETTINGS \(depths \(1, 1, 1, 1\), channels \(16, 32, 48, 64\)\), the model '
                        r'ConvNeXt .*channels \(8, 16, 24, 32\).*: set model\.backbone\.arch to match the file',
                        last_line(out)), last_line(out)
    assert not training_started(out)


@pytest.mark.parametrize('name', NAMES)
def test_missing_file_fails_at_start_up_with_one_line(name, runs, data):
    """One training file deleted: the run fails before its first iteration, with one line naming the file."""
    toolkit = next(entry.toolkit for entry in ENTRY_POINTS if entry.name == name)
    out = runs.entries[name].missing.result()
    match = re.fullmatch(MISSING_ERROR[toolkit], last_line(out))
    assert match, last_line(out)
    assert Path(match.group('path')) == Path(data['missing'][ROOT_VARIABLE[toolkit]]) / MISSING[toolkit]
    assert not training_started(out)


# ----------------------------------------------------------------------------------------------------------------
# Testing and inference with OpenMMLab's tools and APIs, on our configs and a checkpoint trained above
# ----------------------------------------------------------------------------------------------------------------

def test_stock_mmseg_test_with_tta(runs):
    """mmseg's tools/test.py --tta wraps the model in the config's tta_model (SegTTAModel, which the fit check must
    see through) and the data in its tta_pipeline; it evaluates and prints mIoU."""
    out = runs.tta.result()
    assert "type='SegTTAModel'" in out  # in the config the Runner printed: the model really is the TTA wrapper
    assert re.search(r'Iter\(test\) \[1/1\] .*mIoU: \d+\.\d+', out), out[-2000:]


def trained(runs: Plan, entry: EntryPoint) -> Path:
    """The complete checkpoint a killed run left (iteration 2 of training)."""
    run = runs.entries[entry.name]
    run.kill.result()
    return run.work_dir / 'iter_2.pth'


def test_det_inferencer_on_our_config(runs, data, monkeypatch, tmp_path):
    """DetInferencer builds its pipeline from the config's test pipeline and reads the classes from the checkpoint;
    boxes and masks come back in the photo's pixels, and the drawing is written."""
    from mmdet.apis import DetInferencer
    monkeypatch.setenv('COCO_DEMO_ROOT', data['good']['COCO_DEMO_ROOT'])  # read when the config is parsed
    inferencer = DetInferencer(model=str(DET), weights=str(trained(runs, MMDET_TOOL)), device='cpu')
    assert tuple(inferencer.model.dataset_meta['classes']) == tuple(SHAPES)
    result = inferencer(str(PHOTO), out_dir=str(tmp_path))
    (prediction,) = result['predictions']
    count = len(prediction['labels'])
    # a barely trained detector scores every class near 1 / (classes + 1), far above the 0.05 score threshold
    assert count > 0 and len(prediction['scores']) == len(prediction['bboxes']) == len(prediction['masks']) == count
    height, width = cv2.imread(str(PHOTO)).shape[:2]
    for label, score, (x1, y1, x2, y2), mask in zip(prediction['labels'], prediction['scores'],
                                                    prediction['bboxes'], prediction['masks']):
        assert 0 <= label < len(SHAPES) and 0 <= score <= 1
        assert 0 <= x1 <= x2 <= width and 0 <= y1 <= y2 <= height
        assert mask['size'] == [height, width]  # an RLE mask of the whole photo, not of the 64 px network input
    assert cv2.imread(str(tmp_path / 'vis' / PHOTO.name)).shape == (height, width, 3)  # the drawing


def test_seg_inferencer_on_our_config(runs, data, monkeypatch, tmp_path):
    """MMSegInferencer builds its pipeline from the config's test pipeline: one class per pixel of the photo, and the
    drawing is written."""
    from mmseg.apis import MMSegInferencer
    monkeypatch.setenv('ADE_DEMO_ROOT', data['good']['ADE_DEMO_ROOT'])  # read when the config is parsed
    inferencer = MMSegInferencer(model=str(SEG), weights=str(trained(runs, MMSEG_TOOL)), device='cpu')
    assert tuple(inferencer.model.dataset_meta['classes']) == CLASSES
    result = inferencer(str(PHOTO), out_dir=str(tmp_path))
    height, width = cv2.imread(str(PHOTO)).shape[:2]
    labels = result['predictions']
    assert isinstance(labels, np.ndarray) and labels.shape == (height, width)
    assert set(np.unique(labels).tolist()) <= set(range(len(CLASSES)))
    assert cv2.imread(str(tmp_path / 'vis' / PHOTO.name)).shape == (height, width, 3)
