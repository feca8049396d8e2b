"""Run a detector or segmentor on images, folders of images (searched recursively) and videos; write the drawn
results and the predictions (detection: JSON with boxes, scores, labels and COCO RLE masks; segmentation: a PNG of
class indices). The config's default_scope picks mmdet's DetInferencer or mmseg's MMSegInferencer.

    python tools/infer.py CONFIG CHECKPOINT INPUT [INPUT ...] [--out-dir DIR] [--score-thr T] [--device D]
        [--batch-size N]

The output formats are described in convnext_dense/tools/infer.py and in docs/inference_and_export.md.
"""
import argparse
import sys

from convnext_dense.tools.infer import build_inferencer, check_device, collect_inputs, run_inference


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file (detection or segmentation)')
    parser.add_argument('checkpoint', help='checkpoint file (whole detector/segmentor, e.g. from tools/train.py)')
    parser.add_argument('inputs', nargs='+', metavar='INPUT', help='image files, folders of images, video files')
    parser.add_argument('--out-dir', default='outputs', help='where vis/ and preds/ go (default: %(default)s)')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: draw and write detections scoring at least this (default: %(default)s)')
    parser.add_argument('--device', default='cpu', help='cpu, cuda, cuda:1, ... (default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='video frames per forward pass; images go one at a time (default: %(default)s)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        sources = collect_inputs(args.inputs)
        check_device(args.device)
        inferencer = build_inferencer(args.config, args.checkpoint, args.device)
        summary = run_inference(inferencer, sources, args.out_dir, args.score_thr, args.batch_size)
    except (FileNotFoundError, ValueError, TypeError) as error:
        sys.exit('\n'.join(f'infer.py: error: {line}' for line in str(error).splitlines()))
    print(f'infer.py: {summary}; drawn results in {args.out_dir}/vis, predictions in {args.out_dir}/preds')


if __name__ == '__main__':
    main()
