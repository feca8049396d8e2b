#!/usr/bin/env bash
# The package as a user installs it, outside the checkout (a step of `make test`, after pytest):
#   1. a fresh virtual environment next to the project's stack: it sees .venv's torch, mmcv (the one the set-up
#      built), mmengine, mmdet and mmseg through a .pth line, so nothing is built or downloaded twice; openmim 0.3.9,
#      build and twine are installed into it;
#   2. `python -m build` (sdist, then the wheel from the sdist) and `twine check`;
#   3. the wheel installed, not editable; from a folder outside the checkout: convnext_dense imported from
#      site-packages, a user config inheriting `convnext_dense::` trained two iterations by Runner.from_cfg and by
#      `mim train`, tested by `mim test` and by mmdet's own tools/test.py, and found by `mim search`; a segmentation
#      user config trained and validated by mmseg's own tools/train.py;
#      CONVNEXT_DENSE_NO_MIM_HOOK=1 turns the hook off.
set -euo pipefail
CHECK=installed
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

BASE=$("$PY" -c 'import sys; print(sys._base_executable)')
# .venv's site-packages, and the base Python's where .venv was made with --system-site-packages (a torch of your own)
STACK=$("$PY" -c 'import site; print("\n".join(site.getsitepackages()))')
"$BASE" -m venv "$WORK/venv"
V=$WORK/venv/bin/python
echo "$STACK" > "$("$V" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/project_stack.pth"
pip() { "$V" -m pip --disable-pip-version-check -q "$@"; }
pip install build twine wheel openmim==0.3.9
say "fresh environment: $WORK/venv (torch $("$V" -c 'import torch; print(torch.__version__, "from", torch.__file__)'))"

"$V" -m build --no-isolation --outdir "$WORK/dist" "$ROOT" > "$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; fail 'python -m build'; }
"$V" -m twine check --strict "$WORK"/dist/* || fail 'twine check'
WHEEL=$(ls "$WORK"/dist/convnext_dense-*.whl)
pip install "$WHEEL[all]"
say "built, checked and installed $(basename "$WHEEL")"

mkdir "$WORK/user" && cp "$HERE/my_detector.py" "$HERE/my_segmentor.py" "$HERE/train_from_cfg.py" "$WORK/user/" && cd "$WORK/user"
"$V" - <<'PYEOF' || fail 'import from site-packages'
import os, sysconfig
import convnext_dense, convnext_dense_mim
site = sysconfig.get_paths()['purelib']
for module in (convnext_dense, convnext_dense_mim):
    assert module.__file__.startswith(site), f'{module.__name__} imported from {module.__file__}, not {site}'
mim = os.path.join(os.path.dirname(convnext_dense.__file__), '.mim')
assert os.path.isfile(os.path.join(mim, 'model-index.yml')) and not os.path.islink(os.path.join(mim, 'configs'))
assert os.path.isfile(os.path.join(mim, 'configs', 'coco', 'cascade_convnext_t.py'))
assert os.path.isfile(os.path.join(mim, 'tools', 'train.py'))
PYEOF
export COCO_DEMO_ROOT=$WORK/coco/
"$V" -m convnext_dense.synthetic.coco "$WORK/coco" --num-train 2 --num-val 1 --size 64 > /dev/null
say 'imported from site-packages; .mim holds configs, tools and the model index'

"$V" train_from_cfg.py my_detector.py "$WORK/w_runner" > "$WORK/runner.log" 2>&1 || { tail -30 "$WORK/runner.log"; fail 'Runner.from_cfg'; }
grep -q 'Epoch(train) \[1\]\[2/2\]' "$WORK/runner.log" || fail 'Runner.from_cfg did not train two iterations'
say 'Runner.from_cfg: two iterations of my_detector.py (convnext_dense::coco/demo_cascade_convnext.py)'

"$V" -m mim train convnext_dense my_detector.py --work-dir "$WORK/w_mim" > "$WORK/mim.log" 2>&1 || { tail -30 "$WORK/mim.log"; fail 'mim train'; }
grep -q 'Epoch(train) \[1\]\[2/2\]' "$WORK/mim.log" || fail 'mim train did not train two iterations'
"$V" -m mim test convnext_dense my_detector.py --checkpoint "$WORK/w_mim/epoch_1.pth" --work-dir "$WORK/w_test" > "$WORK/test.log" 2>&1 || { tail -30 "$WORK/test.log"; fail 'mim test'; }
grep -q '^coco/bbox_mAP: ' "$WORK/test.log" || fail 'mim test printed no bbox mAP'
"$V" -m mim search convnext_dense > "$WORK/search.log" 2>&1 || { cat "$WORK/search.log"; fail 'mim search'; }
grep -q 'config id: cascade_convnext_t' "$WORK/search.log" || fail 'mim search does not list cascade_convnext_t'
say 'mim train (two iterations), mim test (bbox mAP) and mim search (the model index)'

MMDET_TEST=$("$V" -c 'import mmdet, os; print(os.path.join(os.path.dirname(mmdet.__file__), ".mim", "tools", "test.py"))')
"$V" "$MMDET_TEST" my_detector.py "$WORK/w_mim/epoch_1.pth" --work-dir "$WORK/w_mmdet" > "$WORK/mmdet.log" 2>&1 || { tail -30 "$WORK/mmdet.log"; fail "mmdet's tools/test.py"; }
grep -q 'coco/bbox_mAP: ' "$WORK/mmdet.log" || fail "mmdet's tools/test.py printed no bbox mAP"
say "mmdet's own tools/test.py on the same user config and checkpoint"

export ADE_DEMO_ROOT=$WORK/ade
"$V" -m convnext_dense.synthetic.ade "$WORK/ade" --num-train 2 --num-val 1 --size 64 > /dev/null
MMSEG_TRAIN=$("$V" -c 'import mmseg, os; print(os.path.join(os.path.dirname(mmseg.__file__), ".mim", "tools", "train.py"))')
"$V" "$MMSEG_TRAIN" my_segmentor.py --work-dir "$WORK/w_mmseg" > "$WORK/mmseg.log" 2>&1 || { tail -30 "$WORK/mmseg.log"; fail "mmseg's tools/train.py"; }
grep -q 'Iter(train) \[2/2\]' "$WORK/mmseg.log" && grep -q 'mIoU: ' "$WORK/mmseg.log" || fail "mmseg's tools/train.py did not train and validate"
say "mmseg's own tools/train.py: two iterations and validation of my_segmentor.py (convnext_dense::ade20k/demo_upernet_convnext.py)"

if CONVNEXT_DENSE_NO_MIM_HOOK=1 "$V" -c 'from mmengine.config import Config; Config.fromfile("my_detector.py")' > "$WORK/off.log" 2>&1; then
  fail 'CONVNEXT_DENSE_NO_MIM_HOOK=1 did not turn the hook off'
fi
grep -q 'mmengine does not support to load convnext_dense config' "$WORK/off.log" || { cat "$WORK/off.log"; fail 'unexpected error with the hook off'; }
say 'CONVNEXT_DENSE_NO_MIM_HOOK=1: convnext_dense:: refused, as for any unregistered package; done'
