"""Export a ConvNeXt backbone to ONNX (opset >= 17, dynamic batch, height and width); optionally check it with
onnxruntime against PyTorch.

    python tools/export_onnx.py configs/coco/cascade_convnext_t.py --checkpoint CKPT.pth --out convnext_t.onnx --verify
    python tools/export_onnx.py tiny --out convnext_tiny.onnx --shape 512 512
    python tools/export_onnx.py configs/coco/mask_rcnn_convnext_v2_b.py --out convnext_v2_b_fp16.onnx --half --verify

CONFIG_OR_ARCH is a config file (its model.backbone) or an arch name (atto ... huge). --checkpoint takes any
ConvNeXt layout, whole detector/segmentor checkpoints included; without it the weights are random.
"""
import argparse

from convnext_dense.tools.export import DEFAULT_OPSET, build_backbone, default_verify_shapes, export_onnx, verify_onnx


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config_or_arch', metavar='CONFIG_OR_ARCH', help='config file or ConvNeXt arch name')
    parser.add_argument('--checkpoint', help='weights to export (default: random weights)')
    parser.add_argument('--out', required=True, help='ONNX file to write')
    parser.add_argument('--shape', type=int, nargs=2, default=[512, 512], metavar=('H', 'W'),
                        help='example input height and width for tracing (default: 512 512); the graph takes '
                        'any size')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help='ONNX opset, >= 17 (default: %(default)s)')
    parser.add_argument('--half', action='store_true',
                        help='export a float16 graph (input, weights, outputs); GRN norms and LayerNorms stay '
                        'accumulated in float32')
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime with PyTorch at the example size and at a second size')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    backbone = build_backbone(args.config_or_arch, args.checkpoint)
    shape = tuple(args.shape)
    files = export_onnx(backbone, args.out, shape, args.opset, half=args.half)
    print(f'wrote {", ".join(files)} (inputs: image N x 3 x H x W; outputs: '
          f'{", ".join(f"stage{i} (stride {s})" for i, s in zip(backbone.out_indices, backbone.out_strides))})')
    if args.verify:
        for (height, width), diff in verify_onnx(backbone, args.out, default_verify_shapes(shape)).items():
            print(f'onnxruntime vs PyTorch at {height} x {width}: max abs difference {diff:.2e}')


if __name__ == '__main__':
    main()
