"""Export to Hugging Face transformers: an UperNet + ConvNeXt (V1 / V2) segmentor as UperNetForSemanticSegmentation,
a Mask2Former + ConvNeXt (mmdet instance / panoptic, mmseg semantic) as Mask2FormerForUniversalSegmentation, or a
config's ConvNeXt backbone as ConvNextBackbone / ConvNextV2Backbone (docs/hf_transformers.md).

    python tools/export_hf.py configs/ade20k/upernet_convnext_t_512.py CKPT.pth hf_upernet_t
    python tools/export_hf.py configs/coco/mask2former_convnext_t_instance.py CKPT.pth hf_m2f_t
    python tools/export_hf.py configs/coco/cascade_convnext_t.py CKPT.pth hf_convnext_t --part backbone

The folder loads with transformers' from_pretrained (UperNetForSemanticSegmentation.from_pretrained(OUT_DIR),
Mask2FormerForUniversalSegmentation.from_pretrained(OUT_DIR), or
ConvNextBackbone.from_pretrained(OUT_DIR): AutoBackbone asks the Hub first). Its image processor does not resize:
resize images as the config's test pipeline does. Needs pip install "convnext_dense[transformers]".
"""
import argparse

from convnext_dense.tools.export_hf import export_hf
from convnext_dense.utils.error_report import run_tool


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='weights: a whole-model checkpoint (for --part backbone any ConvNeXt '
                        'layout)')
    parser.add_argument('out_dir', help='folder to write')
    parser.add_argument('--part', choices=['model', 'backbone'], default='model',
                        help='model (default): the whole UperNet or Mask2Former; backbone: the ConvNeXt alone')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    hf_model = export_hf(args.config, args.checkpoint, args.out_dir, args.part)
    print(f'wrote {args.out_dir}: {type(hf_model).__name__}, '
          f'{sum(p.numel() for p in hf_model.parameters())} parameters. To publish it: '
          f'hf upload ORG/REPO {args.out_dir}')


if __name__ == '__main__':
    run_tool(main)
