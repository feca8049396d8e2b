"""Evaluate a checkpoint: COCO bbox/segm mAP for detection configs, mIoU for segmentation configs.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE_OR_DIR] [--show-dir DIR] [--tta]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm]
"""
import argparse
import os
import os.path as osp

from convnext_dense.checkpoint.download import resolve
from convnext_dense.tools.cli import (
    add_config_arguments,
    build_runner,
    dump_results,
    enable_tta,
    enable_visualization,
    load_config,
)
from convnext_dense.utils.error_report import run_tool
from convnext_dense.utils.errors import MissingFileError


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file (whole detector/segmentor) or its http(s) URL')
    parser.add_argument('--work-dir', help='where the logs and metrics go (default: work_dirs/<config name>)')
    parser.add_argument('--out', help='also dump predictions: a .pkl file (detection) or a folder of PNGs '
                        '(segmentation)')
    parser.add_argument('--show-dir', help='draw predictions over the images into this folder')
    parser.add_argument('--tta', action='store_true', help="test-time augmentation from the config's tta_model "
                        'and tta_pipeline (segmentation: multi-scale 0.5-1.75 + flip)')
    add_config_arguments(parser, launcher=True)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    checkpoint = resolve(args.checkpoint)  # a URL: its cached copy, downloaded first if missing
    if not osp.exists(checkpoint):  # a folder is transformers' save_pretrained: the loader reads it
        raise MissingFileError(f'checkpoint {checkpoint} does not exist')
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = checkpoint
    if args.tta:
        enable_tta(cfg)
    if args.show_dir:
        enable_visualization(cfg, args.show_dir)
    runner = build_runner(cfg)
    if args.out:
        dump_results(runner, args.out)
    metrics = runner.test()
    print('\n'.join(f'{key}: {value}' for key, value in metrics.items()))


if __name__ == '__main__':
    run_tool(main)
