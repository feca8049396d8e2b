"""convnext_dense: ConvNeXt (V1 and V2) backbones, checkpoint loading and layer decay for mmdet and mmseg."""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def read_version() -> str:
    """``__version__`` of convnext_dense/version.py, read as text: importing the package would need its dependencies."""
    text = (HERE / 'convnext_dense' / 'version.py').read_text(encoding='utf-8')
    match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    if match is None:
        raise RuntimeError('convnext_dense/version.py does not define __version__')
    return match.group(1)


# Tested: Python 3.11 with torch 2.13, mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0, mmsegmentation 1.2.2 (CPU).
# Python >= 3.10: the tests use zip(..., strict=True), and torch 2.13 (what tools/setup_env.sh installs) and the
# current safetensors and onnx releases require it. The package modules themselves use no syntax or standard-library
# call newer than 3.8.
MMCV = 'mmcv>=2.0.0,<2.2.0'  # mmdet 3.3 and mmseg 1.2 reject mmcv >= 2.2.0
DET = [MMCV, 'mmdet>=3.1.0,<3.4.0', 'pycocotools']
SEG = [MMCV, 'mmsegmentation>=1.1.0,<1.3.0', 'ftfy', 'regex']
# hf:// checkpoint names. 0.x, 1.x and 2.x use different HTTP stacks (requests, httpx, httpx2): the tests ran
# against 1.0.0, 1.33 and 2.4
HF = ['huggingface_hub>=1.0,<3']

setup(
    name='convnext_dense',
    version=read_version(),
    description=__doc__,
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['convnext_dense', 'convnext_dense.*']),
    # mmengine 0.10 imports pkg_resources at run time (to resolve `mmdet::` configs); setuptools 81 removed it.
    # filelock, tqdm: one process downloads a checkpoint URL while the others wait; its progress bar
    install_requires=['torch>=1.13', 'mmengine>=0.10.0,<0.11.0', 'setuptools<81', 'numpy', 'safetensors', 'filelock',
                      'tqdm'],
    extras_require={
        'det': DET,
        'seg': SEG,
        'hf': HF,
        'all': sorted(set(DET + SEG + HF)),
        'export': ['onnx', 'onnxscript', 'onnxruntime'],  # onnxscript: torch's torch.export-based ONNX exporter
        # ruff: the linter `make test` runs; huggingface_hub: the hf:// tests
        'tests': ['pytest', 'ruff>=0.4', 'onnx', 'onnxscript', 'onnxruntime', *HF],
        # the peers tools/benchmark.py compares with; installed by hand only, never by the set-up or `all`: timm
        # needs a torchvision built for the installed torch (see the README's Performance section)
        'bench': ['timm', 'mmpretrain>=1.2.0'],
    },
)
