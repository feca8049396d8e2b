# Sourced by the installed-package checks (run.sh, core_only.sh), which set CHECK to their name first: the paths, a
# work folder removed on exit, and how they report.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/installed
PY=${PY:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)
say() { printf '[%s %3ds] %s\n' "$CHECK" "$(( $(date +%s) - START ))" "$*"; }
fail() { printf '[%s] FAILED: %s\n' "$CHECK" "$*" >&2; exit 1; }
