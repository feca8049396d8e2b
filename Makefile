# The README's two commands: `make demo` trains and evaluates the detector on the embedded demo data, `make test`
# runs the tests. Each first sets up .venv itself (idempotent: a second run only checks a stamp; tools/setup_env.sh).
PY := .venv/bin/python

.PHONY: setup demo test
setup:
	@bash tools/setup_env.sh

demo: setup
	$(PY) tools/benchmark.py --device cpu --quick

test: setup
	$(PY) -m pytest tests
