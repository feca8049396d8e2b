#!/usr/bin/env bash
# The model core as a user without OpenMMLab installs it (a step of `make test`):
#   1. the wheel, built by pip from a copy of the checkout;
#   2. a fresh virtual environment (no pip of its own) that sees, of the project's stack, only what the wheel
#      requires (torch, numpy, safetensors, filelock, tqdm and their own requirements, linked from .venv: nothing is
#      downloaded), not mmengine, mmcv, mmdet or mmseg; the wheel installed there by .venv's pip without
#      dependencies, then `pip check` (every requirement of the wheel is met by what it sees);
#   3. from a folder outside the checkout, tests/installed/core_only.py's check: import from site-packages with no
#      OpenMMLab module imported and `import mmengine` failing, build, load an official and a whole mmdet model file
#      (directly and by init_cfg, once), forward, layer-decay groups and an AdamW step.
set -euo pipefail
CHECK=core-only
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Built from a copy of the checkout's files (tracked and new, not ignored): an in-place build would leave build/ and
# egg-info in the checkout, and setuptools would pack whatever an earlier build left in build/lib.
mkdir "$WORK/src"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
  (cd "$ROOT" && tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$WORK/src"
"$PY" -m pip --disable-pip-version-check wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src" \
  > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; fail 'pip wheel'; }
WHEEL=$(ls "$WORK"/dist/convnext_dense-*.whl)
say "built $(basename "$WHEEL")"

BASE=$("$PY" -c 'import sys; print(sys._base_executable)')
# No pip of its own (nor the old setuptools that venv bundles): .venv's pip installs into it with --python.
"$BASE" -m venv --without-pip "$WORK/venv" || fail "python -m venv (Debian: apt-get install python3-venv)"
V=$WORK/venv/bin/python
mkdir "$WORK/stack"
"$PY" "$HERE/core_only.py" expose "$WHEEL" "$WORK/stack" || fail 'exposing the requirements of the wheel'
echo "$WORK/stack" > "$("$V" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/core_stack.pth"
pip() { "$PY" -m pip --disable-pip-version-check --python "$V" "$@"; }
pip install -q --no-deps --no-index "$WHEEL" || fail 'pip install of the wheel'
pip check || fail 'pip check: a requirement of the wheel is missing from the core-only environment'
say "fresh environment without OpenMMLab: $WORK/venv"

mkdir "$WORK/user" && cd "$WORK/user"
"$V" "$HERE/core_only.py" check || fail 'the core without OpenMMLab'
say 'done'
