"""convnext_dense: ConvNeXt (V1 and V2) backbones, checkpoint loading and layer decay for mmdet and mmseg."""
from pathlib import Path

from setuptools import find_packages, setup

# Tested: torch 2.13, mmengine 0.10.7, mmcv 2.1.0, mmdet 3.3.0, mmsegmentation 1.2.2 (Python 3.11).
MMCV = 'mmcv>=2.0.0,<2.2.0'  # mmdet 3.3 and mmseg 1.2 reject mmcv >= 2.2.0
DET = [MMCV, 'mmdet>=3.1.0,<3.4.0', 'pycocotools']
SEG = [MMCV, 'mmsegmentation>=1.1.0,<1.3.0', 'ftfy', 'regex']

setup(
    name='convnext_dense',
    version='0.1.0',
    description=__doc__,
    long_description=Path(__file__).with_name('README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(include=['convnext_dense', 'convnext_dense.*']),
    # mmengine 0.10 imports pkg_resources at run time (to resolve `mmdet::` configs); setuptools 81 removed it.
    install_requires=['torch>=1.13', 'mmengine>=0.10.0,<0.11.0', 'setuptools<81', 'numpy', 'safetensors'],
    extras_require={
        'det': DET,
        'seg': SEG,
        'all': sorted(set(DET + SEG)),
        'export': ['onnx', 'onnxscript', 'onnxruntime'],  # onnxscript: torch's torch.export-based ONNX exporter
        'tests': ['pytest', 'onnx', 'onnxscript', 'onnxruntime'],
    },
)
