"""Draw a config's training samples with their ground truth, after the training pipeline (detection or
segmentation: the config's default_scope picks).

    python tools/browse_dataset.py configs/coco/cascade_convnext_t.py --output-dir work_dirs/browse --max 20
    python tools/browse_dataset.py configs/ade20k/upernet_convnext_t_512.py --output-dir work_dirs/browse_ade
"""
import argparse

from convnext_dense.tools.browse_dataset import browse_dataset
from convnext_dense.tools.cli import add_config_arguments, load_config
from convnext_dense.utils.error_report import run_tool


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('--output-dir', required=True, help='folder for the PNG drawings')
    parser.add_argument('--max', type=int, metavar='N', help='draw at most N samples (default: all)')
    add_config_arguments(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    written = browse_dataset(cfg, args.output_dir, args.max)
    print(f'\nwrote {len(written)} drawings to {args.output_dir}')


if __name__ == '__main__':
    run_tool(main)
