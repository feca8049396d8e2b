"""Export to ONNX (opset >= 17, dynamic batch, height and width) a ConvNeXt backbone, a whole UperNet segmentor
(whole-image mode) or a detector's backbone + FPN; optionally check the file with onnxruntime against PyTorch.

    python tools/export_onnx.py tiny --out convnext_tiny.onnx --shape 512 512
    python tools/export_onnx.py configs/coco/cascade_convnext_t.py --checkpoint CKPT.pth --out backbone.onnx --verify
    python tools/export_onnx.py configs/ade20k/upernet_convnext_t_512.py --part model --checkpoint CKPT.pth \\
        --out upernet.onnx --verify
    python tools/export_onnx.py configs/coco/cascade_convnext_t.py --part model --checkpoint CKPT.pth --out fpn.onnx
    python tools/export_onnx.py configs/coco/mask_rcnn_convnext_v2_b.py --out convnext_v2_b_fp16.onnx --half --verify

CONFIG_OR_ARCH is a config file or an arch name (atto ... xxlarge; backbone only). --part backbone (default) exports
model.backbone and takes any ConvNeXt checkpoint layout, whole detector/segmentor checkpoints included; --part model
exports, from a config, the whole segmentor (mmseg) or the backbone + neck (mmdet), taking raw RGB 0-255 float32
images, with a whole detector/segmentor checkpoint. Without --checkpoint the weights are random.
"""
import argparse
import sys

from convnext_dense.tools import export_models
from convnext_dense.tools.export_onnx import (
    DEFAULT_OPSET,
    build_backbone,
    default_verify_shapes,
    export_onnx,
    verify_onnx,
)
from convnext_dense.utils.error_report import run_tool


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config_or_arch', metavar='CONFIG_OR_ARCH', help='config file or ConvNeXt arch name')
    parser.add_argument('--part', choices=['backbone', 'model'], default='backbone',
                        help='backbone (default), or model: the whole segmentor / the detector backbone + neck')
    parser.add_argument('--checkpoint', help='weights to export (default: random weights)')
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 512], metavar=('H', 'W'),
                        help='example input height and width for tracing (default: 512 512); the graph takes '
                        'any size')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset, >= 17 (default: %(default)s)')
    parser.add_argument('--half', action='store_true',
                        help='backbone only: export a float16 graph (input, weights, outputs); GRN norms and '
                        'LayerNorms stay accumulated in float32')
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime with PyTorch: backbone on random inputs at the example size and a '
                        'second size; model on the photo grace_hopper.jpg at the example size and two others')
    return parser.parse_args()


def export_backbone(args: argparse.Namespace) -> None:
    backbone = build_backbone(args.config_or_arch, args.checkpoint)
    shape = tuple(args.shape)
    files = export_onnx(backbone, args.out, shape, args.opset, half=args.half)
    print(f'wrote {", ".join(files)} (inputs: image N x 3 x H x W; outputs: '
          f'{", ".join(f"stage{i} (stride {s})" for i, s in zip(backbone.out_indices, backbone.out_strides))})')
    if args.verify:
        for (height, width), diff in verify_onnx(backbone, args.out, default_verify_shapes(shape)).items():
            print(f'onnxruntime vs PyTorch at {height} x {width}: max abs difference {diff:.2e}')


def export_model(args: argparse.Namespace) -> None:
    graph = export_models.build_graph(args.config_or_arch, args.checkpoint)
    shape = tuple(args.shape)
    names = export_models.export_graph(graph, args.out, shape, args.opset)
    print(f'wrote {args.out} (input: image N x 3 x H x W, RGB 0-255 float32, H and W >= 64; outputs: '
          f'{", ".join(names)})')
    if args.verify:
        results = export_models.verify_graph(graph, args.out, export_models.verify_shapes(shape))
        for (height, width), result in results.items():
            agree = f', labels agree on {result["labels_agree"]:.4%} of pixels' if 'labels_agree' in result else ''
            print(f'onnxruntime vs PyTorch on {export_models.PHOTO.name} at {height} x {width}: max abs difference '
                  f'{result["max_abs_diff"]:.2e}{agree}')
        bad = export_models.failures(results)
        if bad:
            sys.exit('verification failed (max abs difference > '
                     f'{export_models.FP32_TOLERANCE}, or labels agree < {export_models.LABEL_AGREEMENT}): '
                     + '; '.join(bad))


def main() -> None:
    args = parse_args()
    if args.half and args.part != 'backbone':
        raise SystemExit('export_onnx: error: --half exports the backbone only (--part backbone)')
    if args.part == 'backbone':
        export_backbone(args)
    else:
        export_model(args)


if __name__ == '__main__':
    run_tool(main)
