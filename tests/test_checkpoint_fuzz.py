"""A checkpoint reader that survives any file: >= 500 generated bad files (``tests/bad_checkpoints.py``) through the
``init_cfg``, ``load_from`` and converter loading paths, in a child process with an address-space limit and a
per-file time limit. Each file either loads or fails with one line naming it; nothing crashes, hangs, exhausts
memory or runs code. The converter tool itself runs on a handful of them."""
import collections
import json
import os
import subprocess
import sys

from bad_checkpoints import SENTINEL, TIME_LIMIT, write_bad_files

from conftest import REPO

PATHS = ('init_cfg', 'load_from', 'converter')
TOOL_CASES = ('truncated', 'pickle globals')  # one file of each through tools/convert_checkpoint.py


def one_line_naming(message: str, name: str) -> bool:
    return '\n' not in message and name in message


def test_every_bad_file_loads_or_fails_with_one_line_naming_it(tmp_path):
    folder = tmp_path / 'files'
    folder.mkdir()
    index = write_bad_files(folder)
    assert len(index) >= 500
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / 'tests')]))
    child = subprocess.Popen([sys.executable, str(REPO / 'tests' / 'bad_checkpoints.py'), str(folder)], cwd=tmp_path,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tool_files = {category: next(name for name, c in index.items() if c == category) for category in TOOL_CASES}
    tools = {name: subprocess.Popen([sys.executable, 'tools/convert_checkpoint.py', str(folder / name),
                                     str(tmp_path / 'converted.pth')], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for name in tool_files.values()}
    stdout, stderr = child.communicate(timeout=600)
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith('{')]
    results = [line for line in lines if 'outcome' in line]
    assert child.returncode == 0, f'the child died ({child.returncode}) at {lines[-1] if lines else None}: ' \
                                  f'{stderr[-3000:]}'
    assert sorted((r['file'], r['path']) for r in results) == sorted((f, p) for f in index for p in PATHS)

    counts = collections.defaultdict(collections.Counter)
    for r in results:
        counts[r['category']][r['outcome']] += 1
    print(f'\n{len(index)} files x {len(PATHS)} loading paths; outcomes per category:')
    for category, outcomes in sorted(counts.items()):
        print(f'  {category:20s} {sum(outcomes.values()) // len(PATHS):4d} files: {dict(outcomes)}')
    print(f'slowest: {max(r["seconds"] for r in results):.2f} s (limit {TIME_LIMIT} s)')

    bad = [r for r in results if not (r['outcome'] == 'loaded' or r['outcome'] == 'error' and
                                      one_line_naming(r['message'], r['file']))]
    assert not bad, '\n'.join(f'{r["path"]} {r["file"]}: {r["outcome"]}: {r["message"][:300]!r}' for r in bad[:20])
    for category in ('truncated', 'empty file', 'special file', 'safetensors header'):
        assert counts[category]['loaded'] == 0, category  # nothing to load in these: a load would be a lie
    assert counts['pickle globals']['error'] > 0 and counts['flipped bytes']['loaded'] > 0
    assert not (folder / SENTINEL).exists() and not (tmp_path / SENTINEL).exists()  # no payload ran

    for name, proc in tools.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, (name, out, err)
        assert err.startswith('convert_checkpoint: error: ') and one_line_naming(err.strip(), name), err
    assert not (tmp_path / 'converted.pth').exists()
