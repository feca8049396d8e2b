"""The ConvNeXt roadmap table: per step the paper's ImageNet-1K top-1 and GFLOPs (published), our GFLOPs (multiply-adds
of convolutions and linear layers at 224 x 224) and parameters, and CPU inference speed at 1 x 3 x 512 x 512.

    python tools/roadmap.py                                  # both regimes, printed and saved to results/
    python tools/roadmap.py --regime resnet50 --no-speed     # the FLOPs and parameters alone (seconds)

See convnext_dense.tools.roadmap for how each column is measured.
"""
import argparse
import os
import platform

import torch

from convnext_dense.specs.roadmap import REGIMES
from convnext_dense.tools.roadmap import format_table, roadmap_table, save_table


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--regime', choices=[*REGIMES, 'all'], default='all', help='the path (default: both)')
    parser.add_argument('--no-speed', action='store_true', help='skip the CPU speed column (minutes)')
    parser.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--out-dir', default='results', help='where roadmap_REGIME.json goes (default: results)')
    parser.add_argument('--note', default='', help='how the machine was loaded, saved with the numbers')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.out_dir, exist_ok=True)
    context = dict(torch=torch.__version__, threads=torch.get_num_threads(), cpu=platform.processor() or
                   platform.machine(), speed='eager fp32, no_grad, best of 3 after 1 warm-up, batch 1, 512 x 512',
                   note=args.note)
    for regime in REGIMES if args.regime == 'all' else [args.regime]:
        rows = roadmap_table(regime, speed=not args.no_speed)
        print(format_table(regime, rows), flush=True)
        path = os.path.join(args.out_dir, f'roadmap_{regime}.json')
        save_table(path, regime, rows, context)
        print(f'saved {path}\n', flush=True)


if __name__ == '__main__':
    main()
