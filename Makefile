# The README's two commands: `make demo` trains and evaluates the detector on the embedded demo data, `make test`
# runs the linter (ruff, configured in ruff.toml) and the tests. Each first sets up .venv itself (idempotent: a second run only checks a stamp; tools/setup_env.sh).
PY := .venv/bin/python

.PHONY: setup demo demo-seg test
setup:
	@bash tools/setup_env.sh

# `make demo`: Cascade Mask R-CNN + ConvNeXt-atto learns synthetic shapes in the COCO layout on CPU, then is tested
# (bbox and segm mAP; predictions drawn under work_dirs/demo/show) and run with tools/infer.py on four val images
# (work_dirs/demo/infer). The data is written once, into $(COCO_DEMO_ROOT).
COCO_DEMO_ROOT ?= data/coco_demo
demo: setup
	@test -f $(COCO_DEMO_ROOT)/annotations/instances_val2017.json || $(PY) -m convnext_dense.synthetic.coco $(COCO_DEMO_ROOT)
	COCO_DEMO_ROOT=$(COCO_DEMO_ROOT)/ $(PY) tools/train.py configs/coco/demo_cascade_convnext.py --work-dir work_dirs/demo
	COCO_DEMO_ROOT=$(COCO_DEMO_ROOT)/ $(PY) tools/test.py configs/coco/demo_cascade_convnext.py \
		"$$(cat work_dirs/demo/last_checkpoint)" --work-dir work_dirs/demo --show-dir work_dirs/demo/show
	COCO_DEMO_ROOT=$(COCO_DEMO_ROOT)/ $(PY) tools/infer.py configs/coco/demo_cascade_convnext.py \
		"$$(cat work_dirs/demo/last_checkpoint)" $$(ls $(COCO_DEMO_ROOT)/val2017/* | head -4) --out-dir work_dirs/demo/infer

# `make demo-seg`: UperNet + ConvNeXt-atto learns synthetic shapes in the ADE20K layout on CPU, then is tested (mIoU,
# per-class IoU, predictions drawn under work_dirs/demo_seg/show) and run with tools/infer.py on four val images
# (work_dirs/demo_seg/infer). The data is written once, into $(ADE_DEMO_ROOT).
ADE_DEMO_ROOT ?= data/ade_demo
demo-seg: setup
	@test -d $(ADE_DEMO_ROOT)/annotations/validation || $(PY) -m convnext_dense.synthetic.ade $(ADE_DEMO_ROOT)
	ADE_DEMO_ROOT=$(ADE_DEMO_ROOT) $(PY) tools/train.py configs/ade20k/demo_upernet_convnext.py --work-dir work_dirs/demo_seg
	ADE_DEMO_ROOT=$(ADE_DEMO_ROOT) $(PY) tools/test.py configs/ade20k/demo_upernet_convnext.py \
		"$$(cat work_dirs/demo_seg/last_checkpoint)" --work-dir work_dirs/demo_seg --show-dir work_dirs/demo_seg/show
	ADE_DEMO_ROOT=$(ADE_DEMO_ROOT) $(PY) tools/infer.py configs/ade20k/demo_upernet_convnext.py \
		"$$(cat work_dirs/demo_seg/last_checkpoint)" $$(ls $(ADE_DEMO_ROOT)/images/validation/* | head -4) \
		--out-dir work_dirs/demo_seg/infer

# `make test` builds the manual (docs/, mkdocs.yml) with --strict, so a broken link or a moved heading fails it, and
# ends with the package as users install it: the wheel with no extras in an environment that has torch and no
# OpenMMLab package (tests/installed/core_only.sh), then the wheel installed into a fresh environment next to .venv's
# stack, used from outside the checkout (tests/installed/run.sh).
test: setup
	$(PY) -m ruff check .
	$(PY) -m mkdocs build --strict --site-dir build/site
	$(PY) -m pytest tests
	PY=$(PY) bash tests/installed/core_only.sh
	PY=$(PY) bash tests/installed/run.sh
