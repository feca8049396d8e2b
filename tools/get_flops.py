"""Parameters and FLOPs (multiply-adds) of a config's model, detection or segmentation (its default_scope picks).

    python tools/get_flops.py configs/coco/cascade_convnext_t.py            # at 800 x 1280, as published
    python tools/get_flops.py configs/ade20k/upernet_convnext_t_512.py      # at the test scale, 512 x 2048
    python tools/get_flops.py CONFIG --shape 512 512 [--cfg-options key=value ...]

The model is built with random weights (no checkpoint is read); see convnext_dense.tools.get_flops for what is counted.
"""
import argparse

from convnext_dense.tools.cli import add_config_arguments, load_config
from convnext_dense.tools.get_flops import config_complexity, default_shape, format_complexity
from convnext_dense.utils.error_report import run_tool


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input height and width (default: 800 1280 for detection, the test Resize scale for '
                        'segmentation: the sizes of the published FLOPs)')
    add_config_arguments(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    shape = tuple(args.shape) if args.shape else default_shape(cfg)
    print(f'{args.config}: tracing one forward pass at {shape[0]} x {shape[1]} (minutes on a CPU for the large '
          'models)', flush=True)
    print(format_complexity(config_complexity(cfg, shape)))


if __name__ == '__main__':
    run_tool(main)
