"""convnext_dense's loops (``engine/loops.py``): OpenMMLab reached through ``LOOPS`` and ``DATA_SAMPLERS``, nothing
of mmengine replaced.

Each entry point checks a dataset config before the dataset is built (a missing data root is our one line, and the
traceback holds no ``build_dataloader``): our ``tools/train.py``, mmseg's own ``tools/test.py`` (``Runner.from_cfg``),
mmdet's own ``tools/test.py --out`` (which reads ``runner.test_evaluator`` before ``runner.test()``) and the FSDP
recipe's ``FlexibleRunner``. ``import convnext_dense`` replaces no attribute of mmengine's Runners, loops or of
torch's ``DataLoader``; the batch sampler that skips a resumed epoch's batches is built in the loader, never set on
it; a run without a fixed seed, stopped inside an epoch and resumed, trains each image of that epoch once, and an
iteration-based one, resumed, trains the images the uninterrupted run trained; a run whose loops are mmengine's own
says once that the checks before building are off.
"""
import json
import logging
import os
import re
import subprocess
import sys
from typing import Dict, List

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from test_distributed import dist_env
from test_stock_tools import stock_tool
from torch import nn
from torch.utils.data import Dataset

from conftest import REPO, finish, last_line, output, raised, tool
from convnext_dense.engine.hooks.preemption_hook import PREEMPTED_EXIT_CODE
from convnext_dense.engine.loops import resumable
from convnext_dense.engine.train_state import ResumableBatchSampler
from convnext_dense.synthetic.ade import write_ade_demo
from convnext_dense.synthetic.coco import write_coco_demo

CONFIGS = REPO / 'tests' / 'configs'
DET, SEG, FSDP, SEEDLESS, SEEDLESS_SEG = (CONFIGS / f'{name}.py' for name in
                                         ('tiny_det', 'tiny_seg', 'fsdp_det', 'seedless_det', 'seedless_seg'))
# {entry point: (its arguments after python, the loader whose dataset it builds first, the config's data variable)}
ENTRY_POINTS = {
    'our tools/train.py': (['tools/train.py', DET], 'train', 'COCO_DEMO_ROOT'),
    "mmseg's tools/test.py": ([stock_tool('mmseg', 'test.py'), SEG, 'any.pth'], 'test', 'ADE_DEMO_ROOT'),
    "mmdet's tools/test.py --out": ([stock_tool('mmdet', 'test.py'), DET, 'any.pth', '--out', 'out.pkl'], 'test',
                                    'COCO_DEMO_ROOT'),
    'FSDP, FlexibleRunner': (['tools/train.py', FSDP], 'train', 'COCO_DEMO_ROOT'),
}


@pytest.fixture(scope='module')
def without_data(tmp_path_factory) -> Dict[str, str]:
    """The output of each entry point run with its data root missing, started together."""
    root = tmp_path_factory.mktemp('nodata')
    missing = {var: f'{root}/nowhere/' for var in ('COCO_DEMO_ROOT', 'ADE_DEMO_ROOT')}
    # our tools print a user's mistake as one line; the traceback shows where the check ran
    started = {name: tool(*map(str, args), '--work-dir', str(root / re.sub(r'\W+', '_', name)),
                          env=dist_env(dict(os.environ, CONVNEXT_DENSE_TRACEBACK='1', **missing)))
               for name, (args, _, _) in ENTRY_POINTS.items()}
    return {name: finish(proc, ok=False) for name, proc in started.items()}


@pytest.mark.parametrize('name', ENTRY_POINTS)
def test_each_entry_point_checks_the_data_before_building_it(without_data, name):
    out = without_data[name]
    _, loader, variable = ENTRY_POINTS[name]
    assert re.fullmatch(rf"{raised('MissingFileError')}: {loader}_dataloader\.dataset\.data_root: '.*/nowhere/' does "
                        rf'not exist; the config reads data_root from {variable}: .*', last_line(out)), out[-3000:]
    trace = out[out.rindex('Traceback'):]
    assert 'convnext_dense/engine/loops.py' in trace and 'build_dataloader' not in trace, trace  # nothing built
    if name.startswith('FSDP'):
        assert 'mmengine/runner/_flexible_runner.py' in trace
    if name.endswith('--out'):
        assert 'test_evaluator' in trace  # the property that builds the test loop before runner.test()


NO_PATCH = '''
import json
import mmengine.runner, mmengine.runner.runner, mmengine.runner.loops, torch.utils.data
holders = [mmengine.runner, mmengine.runner.runner, mmengine.runner.loops, mmengine.runner.Runner,
           mmengine.runner.FlexibleRunner, mmengine.runner.BaseLoop, mmengine.runner.EpochBasedTrainLoop,
           mmengine.runner.IterBasedTrainLoop, mmengine.runner.ValLoop, mmengine.runner.TestLoop,
           torch.utils.data.DataLoader]
before = [dict(vars(holder)) for holder in holders]
import convnext_dense, mmdet.registry, mmseg.registry  # what a config's custom_imports and the tools import
print(json.dumps({holder.__name__: sorted(key for key in old if vars(holder).get(key) is not old[key])
                  for holder, old in zip(holders, before)}))
'''


def test_import_replaces_nothing_of_mmengines_runners_and_loops():
    out = subprocess.run([sys.executable, '-c', NO_PATCH], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    changed = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(changed) == 11 and not any(changed.values()), changed


@pytest.fixture(scope='module')
def seedless(tmp_path_factory) -> Dict[str, object]:
    """Runs with ``randomness=dict(seed=None)``, the epoch-based and the iteration-based one side by side (the cores
    are shared): the detector stopped by SIGTERM after 5 of its epoch's 10 iterations, then resumed (``det first``,
    ``det resumed``); the segmentor run whole for 12 iterations, then resumed from its checkpoint of iteration 5 in
    another work dir (``seg whole``, ``seg resumed``). Each work dir holds its image ids per iteration."""
    root = tmp_path_factory.mktemp('seedless')
    write_coco_demo(str(root / 'coco'), num_train=10, num_val=2, seed=0, size=64)
    write_ade_demo(str(root / 'ade'), num_train=8, num_val=1, seed=0, size=64)
    env = dist_env(dict(os.environ, COCO_DEMO_ROOT=f'{root / "coco"}/', ADE_DEMO_ROOT=str(root / 'ade')))
    det = ('tools/train.py', str(SEEDLESS), '--work-dir', str(root / 'det'))
    seg = ('tools/train.py', str(SEEDLESS_SEG), '--work-dir')
    first = tool(*det, env=dict(env, SIGNAL_RANK='0', SIGNAL_AT='5', SIGNAL='SIGTERM'))
    whole = tool(*seg, str(root / 'seg_whole'), env=env)
    assert first.wait(timeout=300) == PREEMPTED_EXIT_CODE, output(first)[-3000:]
    runs = dict(root=root, **{'det first': output(first), 'seg whole': finish(whole)})
    resumed = {'det resumed': tool(*det, '--resume', 'auto', env=env),
               'seg resumed': tool(*seg, str(root / 'seg_resumed'), '--resume', str(root / 'seg_whole' / 'iter_5.pth'),
                                   env=env)}
    return dict(runs, **{name: finish(proc) for name, proc in resumed.items()})


def trained_images(work_dir) -> List[tuple]:
    """(iteration, the image ids it trained), as a run with tests/ddp_probes.ImageIdsHook logged them."""
    lines = (work_dir / 'rank0_images.jsonl').read_text().splitlines()
    return [(line['iter'], line['img_ids']) for line in map(json.loads, lines)]


def drawn_seeds(*outs: str) -> List[List[str]]:
    return [re.findall(r'^\s*seed: (\d+)$', out, re.M) for out in outs]


def test_resume_without_a_fixed_seed_trains_each_image_of_the_epoch_once(seedless):
    """A run with ``randomness=dict(seed=None)`` draws the sampler's seed at each start: stopped by SIGTERM after 5
    of its epoch's 10 iterations and resumed, it must train the other 5 images in the order of the first start."""
    root, first, resumed = seedless['root'], seedless['det first'], seedless['det resumed']
    assert 'resuming inside epoch 1: its first 5 of 10 batches are skipped unloaded' in resumed
    seeds = drawn_seeds(first, resumed)
    assert len(seeds[0]) == len(seeds[1]) == 1 and seeds[0] != seeds[1], seeds  # each start drew its own
    trained = trained_images(root / 'det')
    assert [it for it, _ in trained] == list(range(1, 11))  # 1-5 before the stop, 6-10 after
    images = json.loads((root / 'coco' / 'annotations' / 'instances_train2017.json').read_text())['images']
    ids = [img_id for _, img_ids in trained for img_id in img_ids]
    assert sorted(ids) == sorted(image['id'] for image in images), ids  # each once


def test_an_iteration_based_resume_without_a_fixed_seed_trains_the_images_of_the_uninterrupted_run(seedless):
    """mmengine's ``IterBasedTrainLoop`` replays the batches a resumed run trained, in the order of the sampler's seed,
    which a run with ``randomness=dict(seed=None)`` draws at each start: resumed from its checkpoint of iteration 5,
    it must train in iterations 6 to 12 the images that the uninterrupted run trained there."""
    root = seedless['root']
    whole, resumed = (trained_images(root / name) for name in ('seg_whole', 'seg_resumed'))
    assert [it for it, _ in whole] == list(range(1, 13)) and [it for it, _ in resumed] == list(range(6, 13))
    whole, resumed = dict(whole), dict(resumed)
    assert "the sampler's seed is the checkpoint's, and mmengine replays the first 5 batches" in seedless['seg resumed']
    seeds = drawn_seeds(seedless['seg whole'], seedless['seg resumed'])
    assert len(seeds[0]) == len(seeds[1]) == 1 and seeds[0] != seeds[1], seeds  # each start drew its own
    assert len({img for i in range(1, 5) for img in whole[i]}) == 8  # a pass over the images: order, not a subset
    assert resumed == {i: whole[i] for i in range(6, 13)}, (whole, resumed)


class Numbers(Dataset):
    """0 .. n-1, recording each load in ``loaded``; square images (what mmdet's aspect-ratio sampler reads)."""
    metainfo: dict = dict(classes=('a', 'b'))

    def __init__(self, n: int = 8) -> None:
        self.n, self.loaded = n, []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        self.loaded.append(index)
        return dict(inputs=torch.tensor([float(index)]), data_samples=index)

    def get_data_info(self, index: int) -> dict:
        return dict(width=4, height=4)


@pytest.mark.parametrize('batch_sampler', [None, dict(type='mmdet.AspectRatioBatchSampler')])
def test_the_resumable_batch_sampler_is_built_in_the_loader_and_skips_unloaded(batch_sampler):
    """Built by mmengine from the config that CheckedEpochBasedTrainLoop wraps (around torch's BatchSampler, or the
    config's own): armed, its next epoch skips batches without loading them and calls back before the next load."""
    cfg = dict(dataset=Numbers(), sampler=dict(type='DefaultSampler', shuffle=True, seed=3), batch_size=3,
               batch_sampler=batch_sampler, drop_last=batch_sampler is None, num_workers=0)
    loader = Runner.build_dataloader(resumable(cfg))
    batches, numbers = loader.batch_sampler, loader.dataset  # mmengine builds from a copy of the config
    assert isinstance(batches, ResumableBatchSampler) and batches.sampler.seed == 3  # where DistSamplerSeedHook looks
    epoch = [batch['data_samples'] for batch in loader]
    assert len(loader) == len(epoch) == (2 if batch_sampler is None else 3)  # torch's drop_last; mmdet's keeps all
    numbers.loaded.clear()
    batches.skip_first(1, lambda: numbers.loaded.append('resumed'))
    assert [batch['data_samples'] for batch in loader] == epoch[1:]
    assert numbers.loaded == ['resumed', *(i for batch in epoch[1:] for i in batch)]  # the skipped batch: not loaded
    assert loader.batch_sampler is batches and [batch['data_samples'] for batch in loader] == epoch  # once only


class Linear(BaseModel):
    """y = w x, for a Runner without files: the loss in training, the inputs as predictions."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, inputs: List[torch.Tensor], data_samples=None, mode: str = 'tensor'):
        out = torch.stack(inputs) * self.w
        return dict(loss=out.mean()) if mode == 'loss' else list(out)


class Count(BaseMetric):
    def process(self, data_batch, data_samples) -> None:
        self.results.extend(data_samples)

    def compute_metrics(self, results: list) -> dict:
        return dict(count=len(results))


def test_mmengines_own_loops_run_and_say_once_that_the_checks_before_building_are_off(tmp_path):
    loader = dict(dataset=Numbers(), sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2)
    runner = Runner(model=Linear(), work_dir=str(tmp_path), train_dataloader=loader, val_dataloader=loader,
                    test_dataloader=loader, train_cfg=dict(by_epoch=True, max_epochs=1), val_cfg=dict(type='ValLoop'),
                    test_cfg=dict(), val_evaluator=dict(type=Count), test_evaluator=dict(type=Count),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                    custom_hooks=[dict(type='convnext_dense.DatasetCheckHook')], default_hooks=dict(checkpoint=None))
    records: List[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    runner.logger.addHandler(handler)
    try:
        runner.train()
        runner.test()
    finally:
        runner.logger.removeHandler(handler)
    warnings = [r.getMessage() for r in records if 'checks before building' in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("the dataset configs' checks before building (paths, annotation file, classes) are "
                                  'off for train_cfg.type=EpochBasedTrainLoop, val_cfg.type=ValLoop: '
                                  "convnext_dense's loops run them"), warnings[0]
