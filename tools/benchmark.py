"""Benchmark ConvNeXt backbones and whole models: images/s and peak memory, as a table and JSON.

Prepared suites (side by side with timm, mmpretrain and the stock mmdet / mmseg configs; JSON after every item):
    python tools/benchmark.py --suite cpu --device cpu --out results/cpu_suite.json
    python tools/benchmark.py --suite gpu --device cuda --out results/gpu_suite.json
A grid of backbone cases, GPU (the default input sizes of the recipes):
    python tools/benchmark.py --device cuda --dtypes fp32 bf16 --formats nchw channels_last --compile both
CPU (small sizes):
    python tools/benchmark.py --device cpu --quick
"""
import argparse
import os
import shlex
import sys
from pathlib import Path

from convnext_dense.tools import benchmark, suites

REPO = Path(__file__).resolve().parents[1]

GPU_SHAPES = ['2x3x800x1344', '16x3x512x512']
CPU_SHAPES = ['1x3x512x512', '2x3x256x320']


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda', help='cuda or cpu (default: cuda)')
    parser.add_argument('--arch', default='tiny', help='ConvNeXt arch (default: tiny)')
    parser.add_argument('--shapes', nargs='+', help=f'NxCxHxW inputs (default: {GPU_SHAPES} on cuda, '
                        f'{CPU_SHAPES} on cpu)')
    parser.add_argument('--impls', nargs='+', default=list(benchmark.IMPLS), choices=benchmark.IMPLS)
    parser.add_argument('--dtypes', nargs='+', default=['fp32', 'bf16'], choices=list(benchmark.DTYPES),
                        help='fp32, or autocast to bf16/fp16')
    parser.add_argument('--formats', nargs='+', default=['nchw', 'channels_last'], choices=['nchw', 'channels_last'])
    parser.add_argument('--compile', choices=['eager', 'compiled', 'both'], default='eager')
    parser.add_argument('--with-cp', choices=['off', 'on', 'both'], default='off',
                        help='activation checkpointing (ours and mmpretrain)')
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--reps', type=int, default=20)
    parser.add_argument('--quick', action='store_true',
                        help='a short run: tiny at 1x3x512x512 and 2x3x256x320, fp32, 2 warm-ups, 5 repetitions')
    parser.add_argument('--out', default='results/benchmark.json', help='JSON file (default: %(default)s)')
    parser.add_argument('--suite', choices=['cpu', 'gpu'],
                        help='a prepared suite instead of the grid; with --quick at toy sizes (a test runs it)')
    parser.add_argument('--items', nargs='+', metavar='KEY', help='with --suite: only these items, in suite order')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.suite:
        items = (suites.cpu_items(str(REPO), args.quick, args.reps) if args.suite == 'cpu' else
                 suites.gpu_items(str(REPO), args.device, args.quick, args.reps))
        if args.items:
            unknown = set(args.items) - {key for key, _ in items}
            if unknown:
                sys.exit(f'benchmark.py: error: --items {sorted(unknown)}: not in the {args.suite} suite; valid: '
                         f'{[key for key, _ in items]}')
            items = [(key, measure) for key, measure in items if key in args.items]
        command = ' '.join(shlex.quote(a) for a in ['python', 'tools/benchmark.py'] + sys.argv[1:])
        suites.run_suite(items, args.out, args.device, command)
        print(f'saved {args.out}')
        return
    if args.quick:
        args.dtypes, args.warmup, args.reps = ['fp32'], 2, 5
    shapes = args.shapes or (GPU_SHAPES if args.device.startswith('cuda') else CPU_SHAPES)
    print(benchmark.HEADER)
    results = benchmark.run(
        args.device, args.arch, [tuple(int(v) for v in s.split('x')) for s in shapes], args.impls, args.dtypes,
        [f == 'channels_last' for f in args.formats],
        {'eager': [False], 'compiled': [True], 'both': [False, True]}[args.compile],
        {'off': [False], 'on': [True], 'both': [False, True]}[args.with_cp], args.warmup, args.reps)
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    benchmark.save(results, args.out, args.device)
    print(f'saved {len(results)} results to {args.out}')


if __name__ == '__main__':
    main()
