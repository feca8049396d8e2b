"""What the scripts in ``tools/`` share: their config arguments, config loading with the CPU and single-process
set-up, the Runner, the toolkit scope, and the test-time options of ``tools/test.py``.

One code path serves detection and segmentation: the config's ``default_scope`` (mmdet or mmseg) picks the
toolkit, and only the few options whose spelling differs between the two (dumping results, drawing predictions)
branch on it. Everything a run guarantees (crash-safe checkpoints, the non-finite loss stop, the checkpoint fit
check, the dataset checks) is declared in the configs, not added here.
"""
import argparse
import os
import os.path as osp
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, RUNNERS, DefaultScope
from mmengine.runner import Runner
from torch import nn

from ..engine.resume import check_resume
from ..utils.errors import ConfigError, MissingFileError
from ..utils.toolkits import TOOLKITS


def add_config_arguments(parser: argparse.ArgumentParser, launcher: bool = False) -> None:
    """Add ``--cfg-options`` (every tool that reads a config) and, with ``launcher``, ``--launcher`` and the
    ``--local-rank`` that ``torch.distributed.launch`` passes (the train and test tools)."""
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. train_cfg.max_epochs=12')
    if launcher:
        parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                            help='how the processes were started: none (one process), pytorch (torchrun) or slurm')
        parser.add_argument('--local-rank', '--local_rank', type=int, default=0, help=argparse.SUPPRESS)


def load_config(path: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read a config, apply ``--cfg-options``, and fill in the launcher, work dir and distributed backend.

    Args:
        path: The config file.
        cfg_options: ``key=value`` overrides merged into the config.
        work_dir: Where logs and checkpoints go; default ``work_dirs/<config name>``.
        launcher: 'none', 'pytorch' (torchrun) or 'slurm'.
    """
    if not osp.isfile(path):
        raise MissingFileError(f'config file {path} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope')
    if scope not in TOOLKITS:
        raise ConfigError(f'{path}: default_scope={scope!r}; the tools run configs whose default_scope is one of '
                          f'{TOOLKITS}')
    cfg.launcher = launcher
    cfg.work_dir = work_dir or cfg.get('work_dir') or osp.join('work_dirs', osp.splitext(osp.basename(path))[0])
    if not torch.cuda.is_available():  # NCCL needs GPUs; gloo runs the same collectives on CPU
        cfg.setdefault('env_cfg', ConfigDict()).setdefault('dist_cfg', ConfigDict())['backend'] = 'gloo'
        _sync_bn_to_bn(cfg.model)  # torch's SyncBN runs on GPUs only; on CPU each process keeps its own statistics
        # mmengine passes device_ids=[LOCAL_RANK] to DDP, which DDP refuses for a CPU module
        cfg.setdefault('model_wrapper_cfg', ConfigDict(
            type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False)))
    return cfg


def _sync_bn_to_bn(node: object) -> None:
    """Turn every ``type='SyncBN'`` in a (nested) model config into ``'BN'``, in place."""
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for value in node.values():
            _sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _sync_bn_to_bn(value)


def build_runner(cfg: Config) -> Runner:
    """Build the Runner the config asks for (mmengine turns SyncBN into BN when it runs a single process)."""
    if cfg.launcher == 'pytorch' and not torch.cuda.is_available() and not dist.is_initialized():
        # mmengine's init_dist pins a CUDA device, which fails without GPUs; torchrun's env:// variables are all gloo
        # needs, and the Runner skips its own initialisation of an initialised group
        dist.init_process_group(backend=cfg.env_cfg.dist_cfg.backend)
    if cfg.get('runner_type') == 'FlexibleRunner' and cfg.get('resume'):
        # FlexibleRunner (FSDP) takes a str resume for a file name, and loads before any hook could check it
        message = check_resume(cfg.work_dir, cfg.resume, cfg.get('load_from'))
        if message:
            print_log(message, logger='current')
        cfg.resume = message is None
    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)


@contextmanager
def toolkit_scope(cfg: Config) -> Iterator[None]:
    """Build from the registries of the config's toolkit (its ``default_scope``) inside this block."""
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        yield


def build_model(cfg: Config, part: Optional[str] = None) -> nn.Module:
    """The config's model (or its ``part``, e.g. 'backbone'), randomly initialised (no checkpoint read), in eval
    mode, SyncBN as BN."""
    with toolkit_scope(cfg):
        model = MODELS.build(cfg.model if part is None else cfg.model[part])
    return revert_sync_batchnorm(model).eval()


def enable_amp(cfg: Config) -> None:
    """Train with automatic mixed precision and a dynamic loss scale."""
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def enable_tta(cfg: Config) -> None:
    """Swap in the config's test-time augmentation: ``tta_model`` wraps the model, ``tta_pipeline`` loads data."""
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise ConfigError('--tta needs "tta_model" and "tta_pipeline" in the config; this config has neither')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)


def enable_visualization(cfg: Config, show_dir: str) -> None:
    """Draw every test prediction over its image into ``show_dir``."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ConfigError('--show-dir needs a "visualization" entry in default_hooks; this config has none')
    hook.draw = True
    show_dir = osp.abspath(show_dir)  # mmdet joins a relative dir onto work_dir/timestamp
    if cfg.default_scope == 'mmdet':
        hook.test_out_dir = show_dir
    else:
        hook.interval = 1
        cfg.visualizer.save_dir = show_dir


def dump_results(runner: Runner, out: str) -> None:
    """Also write the raw predictions: a pickle for detection, one PNG per image under ``out`` for segmentation."""
    if runner.cfg.default_scope == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=out))
    else:
        os.makedirs(out, exist_ok=True)
        for metric in runner.test_evaluator.metrics:
            metric.output_dir = out
