"""Training curves and training speed from mmengine's scalar logs (work_dir/<timestamp>/vis_data/scalars.json).

    python tools/analyze_logs.py plot_curve LOG.json [LOG.json ...] [--keys loss coco/bbox_mAP mIoU] --out FILE.png
    python tools/analyze_logs.py cal_train_time LOG.json [LOG.json ...]

plot_curve draws one panel per key (keys a log lacks are skipped) and one line per log; cal_train_time prints the
seconds per iteration, the data-loading share and, for epoch-based runs, the slowest and fastest epoch.
"""
import argparse

from convnext_dense.tools.analyze_logs import format_train_time, load_scalars, plot_curves, train_time
from convnext_dense.utils.error_report import run_tool


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    plot = commands.add_parser('plot_curve', help='draw scalars against the iteration')
    plot.add_argument('logs', nargs='+', help='scalars.json files')
    plot.add_argument('--keys', nargs='+', default=['loss'],
                      help='scalars to draw, e.g. loss coco/bbox_mAP coco/segm_mAP mIoU (default: loss)')
    plot.add_argument('--title', help='figure title')
    plot.add_argument('--out', required=True, help='image file to write (.png, .pdf, .svg)')
    timing = commands.add_parser('cal_train_time', help='print the time per training iteration')
    timing.add_argument('logs', nargs='+', help='scalars.json files')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logs = [load_scalars(path) for path in args.logs]
    if args.command == 'plot_curve':
        drawn = plot_curves(logs, args.keys, args.out, args.title)
        print(f'drew {", ".join(drawn)} of {len(logs)} log(s) into {args.out}')
    else:
        print('\n'.join(format_train_time(log, train_time(log)) for log in logs))


if __name__ == '__main__':
    run_tool(main)
