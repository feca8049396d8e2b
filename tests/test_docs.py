"""The manual states each fact once: its tables of numbers equal their sources, and its links resolve.

* The zoo tables (every markdown table of README.md and docs/ whose first column is ``config``) equal the metafiles
  (``model-index.yml`` and the metafiles it imports): params, FLOPs, crop size, start file, step, and every published
  result, per config; a row of a config whose accuracy is not published must say so and the metafile must have no
  ``Results``. Every metafile model appears in a table. The tables are kept by hand beside columns the metafiles do
  not hold (arch, the paper's own FLOPs, the stock Swin results), and this test holds them to the metafiles.
* The roadmap tables of docs/roadmap.md are what ``convnext_dense.tools.roadmap.format_table`` prints for
  ``results/roadmap_{regime}.json`` with the paper's numbers of ``specs.roadmap.PAPER``.
* The arch table of docs/models_and_checkpoints.md equals ``ARCH_SETTINGS``.
* Every relative link and ``#anchor`` of README.md resolves (mkdocs checks docs/ only), headings slug the same on
  GitHub and in mkdocs, every package path the text names exists, and the site builds with ``--strict``.
"""
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest
import yaml

from conftest import REPO
from convnext_dense.specs.arch import ARCH_SETTINGS, arch_norm_eps
from convnext_dense.specs.roadmap import PAPER, PAPER_FLOPS_ERRATA, REGIMES, ROADMAP_STEPS
from convnext_dense.tools.roadmap import format_table

DOCS = REPO / 'docs'
PAGES = sorted(DOCS.glob('*.md'))
TEXTS = [REPO / 'README.md', *PAGES]
FENCE = re.compile(r'^\s*(```|~~~)')

# A zoo table's columns: metafile field (Metadata key, or ('Results', metric)), or None for a column the metafiles do
# not hold. A column not listed here fails the test, so that a new column is classified on purpose.
COLUMNS: Dict[str, object] = {
    'config': None, 'arch': None, 'input': None, 'weights': None, 'the stock recipe it follows': None,
    'stock Swin result (published, metafile)': None,  # the Swin models' results, deliberately not in our metafiles
    'params': 'Parameters', 'FLOPs': 'FLOPs', 'FLOPs (published)': 'FLOPs', 'crop': 'Crop Size',
    'default step': 'Roadmap Step', 'pretrained file': 'Pretrained', 'pretrained file (`checkpoints/`)': 'Pretrained',
    'box AP': ('Results', 'box AP'), 'box AP (mmdet)': ('Results', 'box AP'), 'mask AP': ('Results', 'mask AP'),
    'mIoU ss': ('Results', 'mIoU'), 'mIoU ms': ('Results', 'mIoU (ms+flip)'),
    'mIoU (published, DINOv3 model card)': ('Results', 'mIoU'),
    'trained weights (published)': 'Weights',  # the model's Weights (a file name of the URL), not a Metadata field
}
UNITS = {'M': 1e6, 'G': 1e9, 'T': 1e12}


# ---------------------------------------------------------------------------------------------------------- markdown

def prose_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(line number, line) of ``path`` outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(path.read_text(encoding='utf-8').split('\n'), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield number, line


def tables(path: Path) -> List[Tuple[int, List[str], List[List[str]]]]:
    """(first line, header, rows) of every markdown table of ``path``; cells stripped."""
    found, block = [], []
    for number, line in [*prose_lines(path), (0, '')]:
        if line.startswith('|'):
            block.append((number, [cell.strip() for cell in line.strip().strip('|').split('|')]))
            continue
        if len(block) >= 2 and set(''.join(block[1][1])) <= set('-: '):
            found.append((block[0][0], block[0][1], [cells for _, cells in block[2:]]))
        block = []
    return found


def heading_text(line: str) -> str:
    """A heading's text as both renderers see it: code spans and links reduced to their text."""
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', line.lstrip('#').strip())
    return text.replace('`', '')


def github_slug(text: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but '-' and '_' dropped, each space a '-'."""
    return re.sub(r'[^\w\- ]', '', text.lower()).replace(' ', '-')


def headings(path: Path) -> List[str]:
    return [heading_text(line) for _, line in prose_lines(path) if re.match(r'#{1,6} ', line)]


def links(path: Path) -> Iterator[Tuple[int, str]]:
    """(line, target) of every inline link of ``path`` outside code; a link may wrap onto the next line."""
    lines = [(number, re.sub(r'`[^`]*`', '', line)) for number, line in prose_lines(path)]
    for i, (number, line) in enumerate(lines):
        joined = line + (' ' + lines[i + 1][1] if i + 1 < len(lines) else '')
        for match in re.finditer(r'\]\(([^)\s]+)\)', joined):
            if match.start() < len(line):
                yield number, match.group(1)


# ----------------------------------------------------------------------------------------------------------- the zoo

def metafile_models() -> Dict[str, dict]:
    """Every model of the model index by its config path under configs/ (e.g. 'coco/cascade_convnext_t.py')."""
    index = yaml.safe_load((REPO / 'model-index.yml').read_text())
    models = {}
    for metafile in index['Import']:
        for model in yaml.safe_load((REPO / metafile).read_text())['Models']:
            models[model['Config'].removeprefix('configs/')] = model
    return models


def expand(cell: str) -> List[str]:
    """The configs a table cell names: '`ade20k/x_{b,l}_640.py`' -> ['ade20k/x_b_640.py', 'ade20k/x_l_640.py']."""
    name = cell.strip('`')
    braces = re.search(r'\{([^}]*)\}', name)
    if not braces:
        return [name]
    return [name[:braces.start()] + part + name[braces.end():] for part in braces.group(1).split(',')]


def resolve(name: str, models: Dict[str, dict]) -> str:
    """The metafile config a table names, by its path under configs/ or, in a folder's table, its file name."""
    matches = [config for config in models if config == name or config.endswith('/' + name)]
    assert len(matches) == 1, f'{name!r} names {len(matches)} metafile configs: {matches}'
    return matches[0]


def quantity(text: str) -> float:
    """'48.1M' -> 48.1e6, '1.39T' -> 1.39e12, '46.2' -> 46.2 (the first number of a cell)."""
    match = re.match(r'\s*([\d.]+)\s*([MGT]?)', text)
    assert match, f'no number in {text!r}'
    return float(match.group(1)) * UNITS.get(match.group(2), 1)


def zoo_rows(models: Dict[str, dict]) -> Iterator[Tuple[str, str, Dict[str, str]]]:
    """(where, config, {column: cell}) of every row of every zoo table of README.md and docs/."""
    for path in TEXTS:
        for line, header, rows in tables(path):
            if header[0] != 'config':
                continue
            unknown = [column for column in header if column not in COLUMNS]
            assert not unknown, f'{path.name}:{line}: columns {unknown} are not mapped to the metafiles (COLUMNS)'
            for row in rows:
                configs = expand(row[0])
                for i, config in enumerate(configs):
                    cells = {}
                    for column, cell in zip(header, row):
                        parts = cell.split(' / ')  # one value per config of the row, or one for all
                        shared = len(configs) == 1 or len(parts) != len(configs) or 'not published' in cell
                        cells[column] = cell if shared else parts[i]
                    yield f'{path.relative_to(REPO)}:{line}', resolve(config, models), cells


def expected(model: dict, field: object) -> Optional[object]:
    """The metafile's value of ``field`` for ``model`` (None: it has none)."""
    if isinstance(field, tuple):
        metrics = {k: v for result in model.get('Results', []) for k, v in result['Metrics'].items()}
        return metrics.get(field[1])
    return model.get(field) if field == 'Weights' else model['Metadata'].get(field)


def mismatches(models: Dict[str, dict]) -> List[str]:
    """Every cell of the zoo tables that differs from the metafiles."""
    bad = []
    for where, config, cells in zoo_rows(models):
        model = models[config]
        for column, cell in cells.items():
            field = COLUMNS[column]
            if field is None:
                continue
            want = expected(model, field)
            if 'not published' in cell:
                if 'Results' in model:
                    bad.append(f'{where}: {config} says {column} is not published, the metafile has Results')
            elif want is None:
                bad.append(f'{where}: {config} shows {column} = {cell!r}, the metafile has no {field}')
            elif field in ('Pretrained', 'Weights'):
                if cell.strip('`') != str(want).rsplit('/', 1)[-1]:
                    bad.append(f'{where}: {config} starts from {cell}, the metafile from {want}')
            elif field == 'Roadmap Step':
                if cell != want:
                    bad.append(f'{where}: {config} {column} {cell!r} != metafile {want!r}')
            elif abs(quantity(cell) - quantity(str(want))) > 1e-9 * quantity(str(want)):
                bad.append(f'{where}: {config} {column} {cell!r} != metafile {field} {want!r}')
    return bad


def test_zoo_tables_equal_the_metafiles():
    models = metafile_models()
    bad = mismatches(models)
    assert not bad, 'the docs and the metafiles disagree:\n' + '\n'.join(bad)


def test_every_metafile_model_and_published_result_is_in_a_table():
    models = metafile_models()
    shown: Dict[str, set] = {}
    for _, config, cells in zoo_rows(models):
        shown.setdefault(config, set()).update(COLUMNS[column] for column in cells)
    assert set(models) == set(shown), f'configs without a table row: {sorted(set(models) - set(shown))}'
    for config, model in models.items():
        weights = ['Weights'] if 'Weights' in model else []
        for field in ('Parameters', 'FLOPs', *weights,
                      *[('Results', m) for r in model.get('Results', []) for m in r['Metrics']]):
            assert field in shown[config], f'{config}: the tables do not show its {field}'


def test_get_flops_examples_equal_the_metafiles():
    """The commented `tools/get_flops.py CONFIG  # ... -> PARAMS, FLOPS` examples (docs/tools.md)."""
    models = metafile_models()
    examples = [match for path in TEXTS for match in re.finditer(
        r'get_flops\.py configs/(\S+\.py)\s+#[^\n]*-> ([\d.]+[MGT]), ([\d.]+[MGT])', path.read_text())]
    assert examples
    for match in examples:
        metadata = models[match.group(1)]['Metadata']
        assert (match.group(2), match.group(3)) == (metadata['Parameters'], metadata['FLOPs']), match.group(0)


def test_test_tool_examples_name_the_metafiles_weights():
    """The `tools/test.py configs/CONFIG URL` examples (docs/model_zoo.md): each URL is its config's Weights."""
    models = metafile_models()
    examples = [match for path in TEXTS for match in re.finditer(
        r'tools/test\.py configs/(\S+\.py) (https://\S+)', path.read_text())]
    assert len(examples) >= 2
    for match in examples:
        assert models[match.group(1)].get('Weights') == match.group(2), match.group(0)


def test_a_changed_number_is_caught():
    """The comparison finds a changed cell (as a typo in the docs would be), not only a missing one."""
    models = metafile_models()
    models['coco/cascade_convnext_t.py'] = dict(models['coco/cascade_convnext_t.py'])
    models['coco/cascade_convnext_t.py']['Metadata'] = {**models['coco/cascade_convnext_t.py']['Metadata'],
                                                        'FLOPs': '742G'}
    assert any('cascade_convnext_t.py FLOPs' in line for line in mismatches(models))


# --------------------------------------------------------------------------------------------- roadmap and arch table

@pytest.mark.parametrize('regime', REGIMES)
def test_roadmap_table_is_what_the_tool_prints(regime):
    """The docs' table = format_table of the saved measurement, with the paper's numbers from PAPER."""
    saved = json.loads((REPO / 'results' / f'roadmap_{regime}.json').read_text())
    assert [row['step'] for row in saved['rows']] == list(ROADMAP_STEPS)
    rows = []
    for row in saved['rows']:
        published = PAPER[regime][row['step']]
        assert (row['paper_top1'], row['paper_gflops']) == (published.top1, published.gflops), row['step']
        row = {**row, 'paper_top1': published.top1, 'paper_gflops': published.gflops}
        row.pop('paper_gflops_implied', None)
        if (regime, row['step']) in PAPER_FLOPS_ERRATA:
            row['paper_gflops_implied'] = PAPER_FLOPS_ERRATA[(regime, row['step'])]
        rows.append(row)
    table = format_table(regime, rows).split('\n')[2:]  # the table, without format_table's title
    blocks, block = [], []
    for _, line in [*prose_lines(DOCS / 'roadmap.md'), (0, '')]:
        if line.startswith('|'):
            block.append(line)
        elif block:
            blocks, block = blocks + [block], []
    shown = max(blocks, key=lambda lines: len(set(lines) & set(table)))  # the docs' table of this regime
    assert shown == table, (f'docs/roadmap.md, {regime}: shown {sorted(set(shown) - set(table))}, format_table '
                            f'prints {sorted(set(table) - set(shown))}')


def test_arch_table_equals_arch_settings():
    [(_, header, rows)] = [t for t in tables(DOCS / 'models_and_checkpoints.md') if t[1][0] == 'arch']
    assert header == ['arch', 'depths', 'channels', 'LayerNorm eps']
    shown = {row[0].strip('`'): (tuple(map(int, row[1].split(','))), tuple(map(int, row[2].split(','))),
                                 float(row[3])) for row in rows}
    assert shown == {name: (tuple(arch['depths']), tuple(arch['channels']), arch_norm_eps(name))
                     for name, arch in ARCH_SETTINGS.items()}


# ------------------------------------------------------------------------------------------------------------- links

def test_readme_links_and_anchors_resolve():
    """Relative links of README.md point at files that exist, and their #anchors at headings there (GitHub's
    slugs, which equal mkdocs' for every heading: see the next test)."""
    readme = REPO / 'README.md'
    bad, checked = [], 0
    for line, target in links(readme):
        if re.match(r'[a-z]+:', target):
            continue
        checked += 1
        file, _, anchor = target.partition('#')
        path = (readme.parent / file).resolve() if file else readme
        if not path.exists():
            bad.append(f'README.md:{line}: {target}: no such file')
        elif anchor and anchor not in {github_slug(text) for text in headings(path)}:
            bad.append(f'README.md:{line}: {target}: no heading #{anchor} in {path.relative_to(REPO)}')
    assert checked > 20 and not bad, '\n'.join(bad)


def test_headings_slug_alike_on_github_and_in_mkdocs():
    """An anchor mkdocs checks in docs/ is then the one GitHub renders too; and no page repeats a heading (the two
    number repeats differently)."""
    slugify = pytest.importorskip('markdown.extensions.toc').slugify
    for path in TEXTS:
        texts = headings(path)
        slugs = [github_slug(text) for text in texts]
        assert slugs == [slugify(text, '-') for text in texts], path.name
        assert len(set(slugs)) == len(slugs), f'{path.name} repeats a heading'


def test_package_paths_the_text_names_exist():
    """Every ``convnext_dense/...`` path the README and the manual name exists (the package was re-laid out once)."""
    missing = []
    for path in TEXTS:
        for name in re.findall(r'`(convnext_dense/[\w./{},]+)`', path.read_text()):
            missing += [f'{path.name}: {one}' for one in expand(name) if not (REPO / one).exists()]
    assert not missing, '\n'.join(missing)


def test_site_builds_strict(tmp_path):
    """mkdocs' --strict build: a link to a missing page or #anchor, or a page outside the nav, fails. Without
    --quiet: mkdocs 1.6 counts only the warnings it prints, so --strict --quiet passes with broken links."""
    pytest.importorskip('mkdocs')
    build = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir', str(tmp_path)],
                           cwd=REPO, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr + build.stdout
