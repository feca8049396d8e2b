"""Convert a ConvNeXt checkpoint of any known layout (official, mmpretrain, timm, HF transformers) to a clean file.

    python tools/convert_checkpoint.py SRC DST [--prefix backbone.] [--whole-model]

Writes a backbone-only state dict under convnext_dense names (``.safetensors`` if DST ends so), or with
``--whole-model`` an mmdet / mmseg checkpoint with ``backbone.*`` keys under ``state_dict`` (plus the source's neck and
heads, if it has any). The library logs its load report (to stdout); the logic is
``convnext_dense.tools.convert_checkpoint.convert_checkpoint``. SRC may be an http(s) URL: it is downloaded once into
the cache (see docs/models_and_checkpoints.md).
"""
import argparse

from convnext_dense.tools.convert_checkpoint import convert_checkpoint


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='source checkpoint file or its http(s) URL')
    parser.add_argument('dst', help='file to write (never the source)')
    parser.add_argument('--prefix', default=None,
                        help="prefix of the backbone keys in SRC ('' for none); default: detected")
    parser.add_argument('--whole-model', action='store_true',
                        help="write {'state_dict': {'backbone.*': ...}} for mmdet / mmseg load_from")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        report = convert_checkpoint(args.src, args.dst, prefix=args.prefix, whole_model=args.whole_model)
    except (ValueError, OSError) as e:  # OSError: also a failed download
        raise SystemExit(f'convert_checkpoint: error: {e}') from e
    print(f'wrote {args.dst}: {len(report.loaded)} backbone tensors')


if __name__ == '__main__':
    main()
