#!/usr/bin/env bash
# Set up the project's virtual environment (.venv) idempotently: torch, mmcv 2.1.0 with compiled ops,
# mmengine, mmdet, mmsegmentation, pycocotools and convnext_dense itself (editable).
#
# Respects an existing torch: if the base interpreter ($PYTHON, default python3) already imports torch, the venv
# is created with --system-site-packages and that torch is used; otherwise torch==$TORCH_VERSION is installed.
# A second run only checks a stamp file and returns.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
STAMP=$VENV/.convnext_dense-setup

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

if [ -f "$STAMP" ] && [ "$STAMP" -nt "$ROOT/setup.py" ] && [ "$STAMP" -nt "${BASH_SOURCE[0]}" ]; then
  exit 0
fi

command -v "$PYTHON" >/dev/null || die "no '$PYTHON' found. Install Python >= 3.10 (Debian: apt-get install python3 python3-venv) or set PYTHON=/path/to/python."

if [ ! -x "$VENV/bin/python" ]; then
  if "$PYTHON" -c 'import torch' 2>/dev/null; then
    say "using the torch already installed for $PYTHON ($("$PYTHON" -c 'import torch; print(torch.__version__)')); creating $VENV with --system-site-packages"
    "$PYTHON" -m venv --system-site-packages "$VENV" || die "could not create $VENV (Debian: apt-get install python3-venv)."
  else
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV" || die "could not create $VENV (Debian: apt-get install python3-venv)."
  fi
fi
PY=$VENV/bin/python
pip() { "$PY" -m pip --disable-pip-version-check "$@"; }

if "$PY" -c 'import torch' 2>/dev/null; then
  say "torch $("$PY" -c 'import torch; print(torch.__version__)') found"
else
  say "installing torch==$TORCH_VERSION"
  pip install -q "torch==$TORCH_VERSION" || die "pip could not install torch==$TORCH_VERSION; install the torch build you want into $VENV (or for $PYTHON) and run again."
fi

if "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; then
  say "mmcv 2.1.0 with compiled ops found"
else
  command -v g++ >/dev/null || command -v c++ >/dev/null ||
    die "mmcv's ops need a C++ compiler and none was found. Debian/Ubuntu: apt-get install build-essential; then run again."
  "$PY" - <<'PYEOF' || die "Python headers (Python.h) are missing, needed to build mmcv's ops. Debian/Ubuntu: apt-get install python3-dev (matching your Python version); then run again."
import os, sysconfig
raise SystemExit(0 if os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')) else 1)
PYEOF
  # mmcv's setup.py imports pkg_resources (gone from setuptools >= 70) and torch (hence no build isolation).
  pip install -q "setuptools<70" wheel ninja
  say "building mmcv 2.1.0 with its compiled ops: about 20 minutes on 2 cores the first time (pip caches the wheel)"
  MMCV_WITH_OPS=1 pip install --no-build-isolation mmcv==2.1.0 ||
    die "building mmcv 2.1.0 failed (see pip's output above). It needs g++, the Python headers and a torch whose C++ headers match; mmdet 3.3.0 / mmseg 1.2.2 reject mmcv >= 2.2.0, so a newer mmcv is no way out."
  "$PY" -c 'import mmcv.ops' || die "mmcv installed but 'import mmcv.ops' fails: the compiled ops do not match this torch. Remove it (pip uninstall mmcv), clear pip's cache for it (pip cache remove mmcv) and run again."
fi

say "installing mmengine, mmdet, mmsegmentation, pycocotools and convnext_dense (editable)"
pip install -q -e "$ROOT[all,tests]" || die "pip could not install the package's dependencies (see above)."
# panopticapi (mmdet's panoptic loading, PQ and panoptic inference) is not on PyPI; panopticapi-lite provides the
# module but pins numpy < 2, which torch and mmcv here do not take. The modules mmdet calls need only numpy, Pillow
# and the standard library, and work with numpy 2 (tests/test_mask2former_tools.py), so: without its dependencies.
pip install -q --no-deps panopticapi-lite==0.2.0 || die "pip could not install panopticapi-lite 0.2.0 (see above)."
touch "$STAMP"
say "ready: $VENV"
