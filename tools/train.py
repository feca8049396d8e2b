"""Train a detector or segmentor from a config (the config's default_scope picks mmdet or mmseg).

    python tools/train.py configs/coco/cascade_convnext_t.py [--work-dir DIR] [--amp] [--resume [CKPT|auto]]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm]

SIGTERM or SIGUSR1 ends the run after the current iteration with a checkpoint of it and exit code 75; the same command
with --resume auto continues from there (docs/training_at_scale.md).
"""
import argparse
import os

from convnext_dense.engine.resume import RESUME_AUTO
from convnext_dense.tools.cli import add_config_arguments, build_runner, enable_amp, load_config
from convnext_dense.utils.error_report import run_tool


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go (default: work_dirs/<config name>)')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help="scale lr by (GPUs x images per GPU) / the config's auto_scale_lr.base_batch_size")
    parser.add_argument('--resume', nargs='?', const=True, metavar='CKPT',
                        help="resume from CKPT; without a value from the work dir's last_checkpoint (an error if "
                             "there is none); with 'auto' from it if there is one, else start fresh")
    add_config_arguments(parser, launcher=True)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.resume is not None:  # True and 'auto' are checked and explained by convnext_dense.engine.resume
        from_work_dir = args.resume is True or args.resume == RESUME_AUTO
        cfg.resume = args.resume if from_work_dir else True
        cfg.load_from = None if from_work_dir else args.resume
    build_runner(cfg).train()


if __name__ == '__main__':
    run_tool(main)
