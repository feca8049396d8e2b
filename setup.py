"""convnext_dense: ConvNeXt (V1 and V2) backbones, checkpoints and layer decay in PyTorch, for mmdet and mmseg."""
import re
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# What openmim and mmengine read from PKG/.mim: the configs, the tools and the model index with its metafiles (inside
# configs/). In the checkout convnext_dense/.mim holds links to them; a wheel holds copies.
MIM = ('configs', 'tools', 'model-index.yml')
HOOK = 'convnext_dense_mim'  # the module (and .pth) that registers the package with mmengine and mim at start-up


class BuildPy(build_py):
    """setuptools' build_py, then the recipes copied under ``convnext_dense/.mim/`` and ``convnext_dense_mim.pth``
    put at the top of the build, so that site-packages gets it (a wheel places a .pth only through its build).

    An editable install (PEP 660) leaves the package in the checkout, whose ``convnext_dense/.mim`` links to the
    recipes; only the .pth is placed, straight into the editable wheel: setuptools' ``editable_wheel`` installs what
    is not editable into that wheel's folder, which it sets as ``install_lib``.
    """

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):  # setuptools >= 64 (PEP 660)
            self.copy_file(str(HERE / f'{HOOK}.pth'), str(Path(self.get_finalized_command('install').install_lib)))
            return
        build = Path(self.build_lib)
        mim = build / 'convnext_dense' / '.mim'
        shutil.rmtree(mim, ignore_errors=True)
        mim.mkdir(parents=True)
        for name in MIM:
            source = HERE / name
            if source.is_dir():
                shutil.copytree(source, mim / name, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                shutil.copyfile(source, mim / name)
        self.copy_file(str(HERE / f'{HOOK}.pth'), str(build / f'{HOOK}.pth'))


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
# The model core (backbones, checkpoint layouts, layer-decay groups) needs only these, so a plain PyTorch, HF Trainer
# or detectron2 user installs no OpenMMLab package (docs/without_openmmlab.md; tests/installed/core_only.sh installs
# the wheel where mmengine cannot be imported). torch >= 2.4: the blocks' CPU inference path calls
# torch.compiler.is_compiling (2.3) and the autocast queries by device type (2.4); the checkpoint reader's allow-list
# takes (global, name) pairs from torch 2.6 on (below it, files holding more than tensors, such as mmengine runner
# checkpoints, are refused). Tested with torch 2.13 only. filelock, tqdm: one process downloads a checkpoint URL
# while the others wait; its progress bar.
CORE = ['torch>=2.4', 'numpy', 'safetensors', 'filelock', 'tqdm']
# What the OpenMMLab integration (registries, configs, hooks, the optimizer constructor) adds: mmengine, with the
# setuptools it needs: mmengine 0.10 imports pkg_resources at run time (to resolve `mmdet::` configs), and
# setuptools 81 removed it.
MMENGINE = ['mmengine>=0.10.0,<0.11.0', 'setuptools<81']
MMCV = 'mmcv>=2.0.0,<2.2.0'  # mmdet 3.3 and mmseg 1.2 reject mmcv >= 2.2.0
DET = [*MMENGINE, MMCV, 'mmdet>=3.1.0,<3.4.0', 'pycocotools']
SEG = [*MMENGINE, MMCV, 'mmsegmentation>=1.1.0,<1.3.0', 'ftfy', 'regex']
# hf:// checkpoint names. 0.x, 1.x and 2.x use different HTTP stacks (requests, httpx, httpx2): the tests ran
# against 1.0.0, 1.33 and 2.4
HF = ['huggingface_hub>=1.0,<3']
# tools/export_hf.py and its tests. 5.x: transformers 4.x pins huggingface-hub<1.0, which HF above excludes. Tested
# with 5.25.0 and 5.0.0 (tests/test_hf_*.py; 5.0.0 itself needs huggingface_hub >= 1.3, < 2); safetensors is in CORE
TRANSFORMERS = ['transformers>=5.0,<6', *HF]

setup(
    name='convnext_dense',
    version=read_version(),
    description=__doc__,
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['convnext_dense', 'convnext_dense.*']),
    py_modules=[HOOK],
    cmdclass={'build_py': BuildPy},
    install_requires=CORE,
    extras_require={
        'det': DET,
        'seg': SEG,
        'hf': HF,
        'transformers': TRANSFORMERS,
        'all': sorted(set(DET + SEG + HF)),
        'export': ['onnx', 'onnxscript', 'onnxruntime'],  # onnxscript: torch's torch.export-based ONNX exporter
        # ruff: the linter `make test` runs; mkdocs: the docs site `make test` builds (broken links fail it);
        # huggingface_hub: the hf:// tests; transformers: the export / import tests (tests/test_hf_export.py)
        'tests': ['pytest', 'ruff>=0.4', 'mkdocs>=1.6,<2', 'onnx', 'onnxscript', 'onnxruntime', *TRANSFORMERS],
        # the peers tools/benchmark.py compares with; installed by hand only, never by the set-up or `all`: timm
        # needs a torchvision built for the installed torch (see docs/benchmarks.md)
        'bench': ['timm', 'mmpretrain>=1.2.0'],
    },
)
