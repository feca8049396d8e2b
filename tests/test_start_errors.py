"""What a user's mistake looks like at start-up: the checkpoint-fit messages name the file's arch beside the model's,
a checkpoint that cannot be read is one error naming the file, and our tools print a user's mistake
(``convnext_dense.utils.errors.UserError``) as one line without a traceback, the line mmseg's own tools end in.

Two tool runs side by side: our ``tools/test.py`` and mmseg's stock ``tools/train.py``; the rest (the tools' main
with and without ``CONVNEXT_DENSE_TRACEBACK``) runs in this process on the tiny segmentation model.
"""
import os
import re
import stat

import pytest
import torch
from mmengine.registry import DefaultScope
from test_stock_tools import stock_tool

from conftest import REPO, TINY, finish, last_line, read_config, tool
from convnext_dense.checkpoint import read_checkpoint
from convnext_dense.checkpoint.fit import check_checkpoint_fits
from convnext_dense.models.backbone import ConvNeXt
from convnext_dense.tools.convert_checkpoint import convert_checkpoint
from convnext_dense.utils.error_report import EXIT_CODE, TRACEBACK_VARIABLE, run_tool
from convnext_dense.utils.errors import CheckpointError

SEG = REPO / 'tests' / 'configs' / 'tiny_seg.py'  # ConvNeXt depths (1, 1, 1, 1), channels (8, 16, 24, 32)
SEG_ARCH = r"ConvNeXt no arch in ARCH_SETTINGS \(depths \(1, 1, 1, 1\), channels \(8, 16, 24, 32\)\)"
DEEPER = r"ConvNeXt no arch in ARCH_SETTINGS \(depths \(1, 1, 2, 1\), channels \(8, 16, 24, 32\)\)"


def seg_model(arch: dict) -> torch.nn.Module:
    """The tiny segmentation config's EncoderDecoder with a backbone of ``arch``."""
    from mmseg.registry import MODELS
    cfg = read_config(SEG)
    cfg.model.backbone.arch = arch
    cfg.model.decode_head.in_channels, cfg.model.auxiliary_head.in_channels = list(arch['channels']), \
        arch['channels'][2]
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def files(tmp_path_factory) -> dict:
    """A whole model of one block more than the config's (S in a T config), a truncated and a text .pth."""
    folder = tmp_path_factory.mktemp('start_errors')
    paths = dict(deeper=folder / 'deeper.pth', truncated=folder / 'truncated.pth', text=folder / 'notes.pth')
    torch.save({'state_dict': seg_model(dict(TINY)).state_dict(), 'meta': {}}, paths['deeper'])
    paths['truncated'].write_bytes(paths['deeper'].read_bytes()[:2000])
    paths['text'].write_text('these are my notes, not weights\n')
    return paths


@pytest.fixture(scope='module')
def model() -> torch.nn.Module:
    return seg_model(dict(read_config(SEG).model.backbone.arch))


def test_a_deeper_backbone_of_the_same_channels_is_refused_naming_both_archs(files, model):
    """Before: S's extra blocks were ignored and the file loaded into a T config without a word."""
    with pytest.raises(CheckpointError) as error:
        check_checkpoint_fits(model, read_checkpoint(files['deeper']), str(files['deeper']))
    assert re.fullmatch(rf"checkpoint {files['deeper']}: its backbone is {DEEPER}, the model's {SEG_ARCH}: the "
                        r"file's blocks the model lacks would be ignored; set model\.backbone\.arch to match the file",
                        str(error.value)), error.value
    with pytest.raises(CheckpointError, match=r"the model's blocks the file lacks would keep their initial weights"):
        check_checkpoint_fits(seg_model(dict(TINY)), {'state_dict': model.state_dict()}, 'shallower.pth')


def test_a_classification_file_is_unwrapped_and_its_arch_named(model):
    """An official ImageNet file ({'model': ...}): counted through the loader's unwrapping, not '0 tensors'."""
    classifier = ConvNeXt(arch=dict(TINY), out_indices=(3,)).state_dict()
    state = {**classifier, 'norm.weight': torch.ones(32), 'norm.bias': torch.zeros(32), 'head.weight':
             torch.zeros(10, 32), 'head.bias': torch.zeros(10)}
    with pytest.raises(CheckpointError) as error:
        check_checkpoint_fits(model, {'model': state}, 'convnext_tiny_1k_224.pth')
    assert re.fullmatch(rf'checkpoint convnext_tiny_1k_224\.pth: none of its {len(state)} tensors fits the '
                        rf'EncoderDecoder of this config \(backbone {SEG_ARCH}\); the file holds a {DEEPER} backbone '
                        r"alone \(official layout, prefix '', no neck or heads\): load it as the backbone's init_cfg "
                        r'checkpoint, or convert it with tools/convert_checkpoint\.py --whole-model \(its keys start '
                        r".*\); it is a checkpoint of another model", str(error.value)), error.value
    # mmengine loads only a 'state_dict' container (else the dict itself): a fitting model under 'model' loads nothing
    with pytest.raises(CheckpointError, match=r"none of its \d+ tensors fits the EncoderDecoder .*; its tensors sit "
                       r"under 'model', which mmengine does not read .*: save them as \{'state_dict': "
                       r"checkpoint\['model'\]\}$"):
        check_checkpoint_fits(model, {'model': model.state_dict()}, 'under_model.pth')


def test_a_converted_whole_model_of_other_channels_names_its_arch(tmp_path, model):
    """``tools/convert_checkpoint.py --whole-model`` from another arch; its .safetensors twin is 0644 like a .pth."""
    wide = ConvNeXt(arch=dict(depths=(1, 1, 1, 1), channels=(16, 32, 48, 64)), out_indices=(0, 1, 2, 3))
    torch.save(wide.state_dict(), tmp_path / 'wide.pth')
    convert_checkpoint(tmp_path / 'wide.pth', tmp_path / 'whole.pth', whole_model=True)
    with pytest.raises(CheckpointError, match=r"none of its \d+ tensors fits the EncoderDecoder of this config "
                       rf"\(backbone {SEG_ARCH}\); the file holds a model with a ConvNeXt no arch in ARCH_SETTINGS "
                       r'\(depths \(1, 1, 1, 1\), channels \(16, 32, 48, 64\)\) backbone \(official layout\) .*; '
                       r'set model\.backbone\.arch to match the file$'):
        check_checkpoint_fits(model, read_checkpoint(tmp_path / 'whole.pth'), 'whole.pth')
    old = os.umask(0o022)
    try:
        convert_checkpoint(tmp_path / 'wide.pth', tmp_path / 'wide.safetensors')
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / 'wide.safetensors').stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / 'whole.pth').stat().st_mode) == 0o666 & ~old


@pytest.mark.parametrize('name', ['truncated', 'text'])
def test_an_unreadable_checkpoint_is_one_error_naming_the_file(files, name):
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(files[name])
    message = str(error.value)
    assert message.startswith(f"cannot read checkpoint '{files[name]}': ")
    assert message.endswith('(the file is truncated, corrupt or not a PyTorch checkpoint)')
    assert '\n' not in message
    assert error.value.__cause__ is None and error.value.__suppress_context__  # no chained torch traceback


@pytest.fixture(scope='module')
def runs(files, tmp_path_factory) -> dict:
    """Our tools/test.py and mmseg's tools/train.py (load_from) on the deeper file, side by side."""
    from convnext_dense.synthetic.ade import write_ade_demo
    root = tmp_path_factory.mktemp('start_errors_runs')
    write_ade_demo(str(root / 'ade'), num_train=2, num_val=1, seed=0, size=64)
    env = dict(os.environ, ADE_DEMO_ROOT=str(root / 'ade'))
    env.pop(TRACEBACK_VARIABLE, None)
    started = {
        'ours': tool('tools/test.py', str(SEG), str(files['deeper']), '--work-dir', str(root / 'ours'), env=env),
        'mmseg': tool(str(stock_tool('mmseg', 'train.py')), str(SEG), '--work-dir', str(root / 'mmseg'),
                      '--cfg-options', f"load_from={files['deeper']}", env=env),
    }
    return {name: (finish(proc, ok=False), proc.returncode) for name, proc in started.items()}


def test_our_tools_print_a_users_mistake_as_the_line_mmsegs_traceback_ends_in(runs, files):
    out, code = runs['ours']
    assert code == EXIT_CODE and 'Traceback' not in out, out[-3000:]
    line = last_line(out)
    assert re.fullmatch(rf"convnext_dense\.utils\.errors\.CheckpointError: checkpoint {files['deeper']}: its "
                        rf'backbone is {DEEPER}, .*', line), line
    stock, _ = runs['mmseg']
    assert 'Traceback' in stock and last_line(stock) == line  # the stock tool keeps its traceback


def test_the_variable_shows_the_traceback_of_a_users_mistake_and_bugs_keep_theirs(files, monkeypatch, capsys):
    """run_tool (our tools' main) in this process: the one line, the variable's traceback, a bug's traceback."""
    def read():
        read_checkpoint(files['truncated'])

    monkeypatch.delenv(TRACEBACK_VARIABLE, raising=False)
    with pytest.raises(SystemExit) as stop:
        run_tool(read)
    assert stop.value.code == EXIT_CODE
    err = capsys.readouterr().err
    assert re.fullmatch(rf"convnext_dense\.utils\.errors\.CheckpointError: cannot read checkpoint "
                        rf"'{files['truncated']}': .* \(the file is truncated, corrupt or not a PyTorch checkpoint\)\n",
                        err), err
    monkeypatch.setenv(TRACEBACK_VARIABLE, '1')
    with pytest.raises(CheckpointError):
        run_tool(read)
    monkeypatch.delenv(TRACEBACK_VARIABLE)
    with pytest.raises(KeyError):  # not a user's mistake: the traceback, whatever the variable
        run_tool(lambda: {}['key'])
