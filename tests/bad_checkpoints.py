"""Bad checkpoint files by category, and the child process that reads each through the three loading paths.

``write_bad_files(folder)`` writes >= 500 files from four valid seeds (a backbone state dict, a whole mmengine runner
checkpoint with message hub and optimizer, a safetensors file, a legacy-format torch file): truncations at many
offsets, flipped bytes, zip archives with missing or renamed members, pickles that call arbitrary globals, tensors of
the wrong dtype or shape, safetensors with a corrupt header, huge declared sizes, and an empty file, a directory, a
named pipe, a dangling link. Every payload would create ``SENTINEL`` in the folder if it ran.

``python tests/bad_checkpoints.py FOLDER`` (the child) reads every file of ``FOLDER/index.json`` through the
``init_cfg`` path (``ConvNeXt.init_weights``), the ``load_from`` path (mmengine's loader, ``CheckpointFitHook``,
mmengine's copy into a whole model) and the converter (``convert_checkpoint``) under an address-space limit and a
per-file time limit, and prints one JSON line per file and path.
"""
import io
import json
import os
import pickle
import random
import resource
import signal
import struct
import subprocess
import sys
import time
import warnings
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
from safetensors.torch import save_file
from torch import nn

TINY = dict(depths=(1, 1, 2, 1), channels=(8, 16, 24, 32))
SENTINEL = 'payload_ran'
TIME_LIMIT = 10.0  # seconds per file and path: ample for a tiny file on a busy machine, short for a hang
ADDRESS_SPACE = 3 << 30  # bytes: the child needs about 1 GiB for torch and mmengine


class WholeModel(nn.Module):
    """What ``load_from`` loads into: a ConvNeXt under ``backbone.`` and a head."""

    def __init__(self) -> None:
        super().__init__()
        from convnext_dense import ConvNeXt
        self.backbone = ConvNeXt(arch=TINY)
        self.head = nn.Conv2d(TINY['channels'][-1], 3, 1)


class Call:
    """Unpickling this calls ``func(*args)``: what a malicious checkpoint does."""

    def __init__(self, func: Callable, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _payloads(sentinel: str) -> Dict[str, object]:
    import builtins
    import shutil

    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    touch = f'open({sentinel!r}, "w").close()'
    return {
        'os.system': Call(os.system, f'touch {sentinel}'),
        'subprocess.call': Call(subprocess.call, ['touch', sentinel]),
        'eval': Call(builtins.eval, touch),
        'exec': Call(builtins.exec, touch),
        'open': Call(builtins.open, sentinel, 'w'),
        'compile': Call(builtins.compile, touch, 'x', 'exec'),
        '__import__': Call(builtins.__import__, 'antigravity'),
        'getattr os.system': Call(builtins.getattr, Call(builtins.__import__, 'os'), 'system'),
        'getattr HistoryBuffer.__init__': Call(builtins.getattr, HistoryBuffer, '__init__'),
        'getattr HistoryBuffer.__class__': Call(builtins.getattr, HistoryBuffer, '__class__'),
        'shutil.rmtree': Call(shutil.rmtree, '/nonexistent'),
        'np.load': Call(np.load, sentinel),
        'np.fromfile': Call(np.fromfile, '/dev/zero'),
        'torch.load': Call(torch.load, sentinel),
        'torch.save': Call(torch.save, {}, sentinel),
        'nn.Module': Call(nn.Linear, 1, 1),
        'time.sleep': Call(time.sleep, 3600),
        'HistoryBuffer(args)': Call(HistoryBuffer, [1.0] * 3, [1] * 3, 10**12),
        'np.ndarray(huge)': Call(np.ndarray, (1 << 40,)),
        'np.zeros(huge)': Call(np.zeros, (1 << 40,)),
        'torch.empty(huge)': Call(torch.empty, 1 << 40),
        'torch.zeros(huge)': Call(torch.zeros, 1 << 40),
        'os.remove': Call(os.remove, '/nonexistent'),
        'signal.pause': Call(signal.pause),
    }


def _zip_members(data: bytes) -> Dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


def _zip(members: Dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, 'w', compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _torch_bytes(obj: object, legacy: bool = False) -> bytes:
    out = io.BytesIO()
    torch.save(obj, out, _use_new_zipfile_serialization=not legacy)
    return out.getvalue()


def _safetensors_bytes(state_dict: Dict[str, torch.Tensor], folder: Path) -> bytes:
    path = folder / 'tmp.safetensors'
    save_file(state_dict, str(path))
    data = path.read_bytes()
    path.unlink()
    return data


def _with_header(data: bytes, header: bytes, declared: int = -1) -> bytes:
    """A safetensors file with another JSON header (its 8-byte length ``declared``, or the header's own)."""
    (length,) = struct.unpack('<Q', data[:8])
    return struct.pack('<Q', len(header) if declared < 0 else declared) + header + data[8 + length:]


class _StoragePickler(pickle.Pickler):
    """Pickles a tensor as torch.save does, but with the storage size we declare (for huge-size files)."""

    def __init__(self, file, nbytes: int) -> None:
        super().__init__(file, protocol=2)
        self.nbytes = nbytes

    def persistent_id(self, obj):
        if isinstance(obj, torch.storage.TypedStorage):
            return 'storage', torch.FloatStorage, '0', 'cpu', self.nbytes
        return None


def _declared_tensor(nbytes: int, size: Tuple[int, ...], stored: int = 16) -> bytes:
    """A torch zip archive of one float tensor: storage of ``nbytes`` declared, ``stored`` bytes present."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # TypedStorage is deprecated, but it is what torch.save pickles
        storage = torch.zeros(stored // 4).storage()
    pkl = io.BytesIO()
    _StoragePickler(pkl, nbytes).dump({'w': Call(torch._utils._rebuild_tensor_v2, storage, 0, size,
                                                 (1,) * len(size), False, OrderedDict())})
    return _zip({'archive/data.pkl': pkl.getvalue(), 'archive/data/0': bytes(stored),
                 'archive/version': b'3\n', 'archive/byteorder': b'little'})


def _patch_zip_size(data: bytes, member: str, size: int) -> bytes:
    """Declare ``size`` as the uncompressed size of ``member`` in its local and central directory headers."""
    out = bytearray(data)
    name = member.encode()
    for signature, field in ((b'PK\x03\x04', 22), (b'PK\x01\x02', 24)):
        start = 0
        while (start := out.find(signature, start)) >= 0:
            name_at = start + (30 if signature == b'PK\x03\x04' else 46)
            if out[name_at:name_at + len(name)] == name:
                out[start + field:start + field + 4] = struct.pack('<I', size)
            start += 4
    return bytes(out)


def write_bad_files(folder: Path, seed: int = 0) -> Dict[str, str]:
    """Write the bad files into ``folder``; return {file name: category} (also saved as ``index.json``)."""
    from mmengine.logging import MessageHub

    from convnext_dense.checkpoint.layouts import WHOLE_MODEL_PREFIX
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model = WholeModel()
    backbone = model.backbone.state_dict()
    hub = MessageHub(f'fuzz{seed}')
    hub.update_scalar('train/loss', 0.5)
    optimizer = torch.optim.AdamW(model.parameters())
    whole = dict(meta=dict(iter=2, seed=0), state_dict=model.state_dict(), message_hub=hub.state_dict(),
                 optimizer=optimizer.state_dict())
    seeds = {'backbone.pth': _torch_bytes(backbone), 'runner.pth': _torch_bytes(whole),
             'backbone.safetensors': _safetensors_bytes(backbone, folder),
             'legacy.pth': _torch_bytes(backbone, legacy=True)}
    index: Dict[str, str] = {}

    def add(category: str, name: str, data: bytes) -> None:
        name = f'{category.replace(" ", "_")}-{len(index):04d}-{name}'
        (folder / name).write_bytes(data)
        index[name] = category

    for seed_name, data in seeds.items():
        offsets = sorted({0, 1, 7, 8, 9, 64, len(data) - 1, len(data) - 22, len(data) - 23}
                         | {rng.randrange(len(data)) for _ in range(20)}
                         | {int(len(data) * (2 ** -k)) for k in range(1, 10)})
        for offset in offsets:
            add('truncated', seed_name, data[:offset])
        pickled = data.find(b'\x80\x02')  # the pickle inside (zip: data.pkl), where a flip changes structure
        for i in range(30):
            flipped = bytearray(data)
            at = (rng.randrange(pickled, min(len(data), pickled + 2000)) if i % 2 and pickled >= 0
                  else rng.randrange(len(data)))
            flipped[at] ^= 1 << rng.randrange(8)
            add('flipped bytes', seed_name, bytes(flipped))

    for seed_name in ('backbone.pth', 'runner.pth'):
        members = _zip_members(seeds[seed_name])
        prefix = next(iter(members)).split('/', 1)[0]
        data_members = [name for name in members if '/data/' in name]
        for name in [*(name for name in members if '/data/' not in name), data_members[0], data_members[-1]]:
            add('zip members', f'without_{name.replace("/", "_")}-{seed_name}',
                _zip({k: v for k, v in members.items() if k != name}))
        for old, new in ((f'{prefix}/data.pkl', f'{prefix}/model.pkl'), (f'{prefix}/data/0', f'{prefix}/data/00'),
                         (f'{prefix}/data/1', f'{prefix}/data/x'), (f'{prefix}/version', f'{prefix}/VERSION')):
            add('zip members', f'renamed_{new.replace("/", "_")}-{seed_name}',
                _zip({new if k == old else k: v for k, v in members.items()}))
        add('zip members', f'other_archive_names-{seed_name}',
            _zip({k.replace(prefix, 'a', 1) if i % 2 else k: v for i, (k, v) in enumerate(members.items())}))
        add('zip members', f'deflated-{seed_name}', _zip(members, zipfile.ZIP_DEFLATED))
        add('zip members', f'extra_member-{seed_name}', _zip({**members, f'{prefix}/data/999': b'\0' * 64}))
        add('zip members', f'empty_members-{seed_name}', _zip({k: b'' for k in members}))
        add('zip members', f'swapped_storages-{seed_name}',
            _zip({k: members.get(f'{prefix}/data/1', v) if k == f'{prefix}/data/0' else v
                  for k, v in members.items()}))
        add('zip members', f'empty_zip-{seed_name}', _zip({}))
        add('zip members', f'only_data_pkl-{seed_name}', _zip({f'{prefix}/data.pkl': members[f'{prefix}/data.pkl']}))

    sentinel = str(folder / SENTINEL)
    for name, payload in _payloads(sentinel).items():
        for container, wrap in (('zip', lambda p: _torch_bytes({'state_dict': backbone, 'meta': p})),
                                ('tensor_value', lambda p: _torch_bytes({**backbone, 'stem': p})),
                                ('top_level', _torch_bytes),
                                ('raw_pickle', lambda p: pickle.dumps(p, protocol=2))):
            add('pickle globals', f'{name}-{container}.pth', wrap(payload))

    key = 'stages.2.1.pwconv1.weight'
    shape = backbone[key].shape
    variants: List[Tuple[str, object]] = [
        *((f'dtype_{dtype}', backbone[key].to(dtype)) for dtype in (
            torch.int64, torch.int32, torch.int8, torch.uint8, torch.bool, torch.complex64, torch.float16,
            torch.bfloat16, torch.float64)),
        ('shape_transposed', backbone[key].t().contiguous()), ('shape_unsqueezed', backbone[key][None]),
        ('shape_flat', backbone[key].flatten()), ('shape_scalar', torch.tensor(1.0)),
        ('shape_empty', torch.zeros(0)), ('shape_zero_rows', torch.zeros(0, shape[1])),
        ('shape_wider', torch.zeros(shape[0] * 2, shape[1])),
        ('value_none', None), ('value_str', 'weights'), ('value_list', [1.0, 2.0]), ('value_int', 3),
        ('value_dict', {'a': torch.zeros(1)}),
    ]
    for name, value in variants:
        state = {**backbone, key: value}
        add('wrong tensors', f'{name}-backbone.pth', _torch_bytes(state))
        add('wrong tensors', f'{name}-runner.pth', _torch_bytes(
            {**whole, 'state_dict': {**whole['state_dict'], WHOLE_MODEL_PREFIX + key: value}}))
        if isinstance(value, torch.Tensor) and value.dtype != torch.complex64:
            add('wrong tensors', f'{name}-backbone.safetensors', _safetensors_bytes(
                {k: v.contiguous() for k, v in state.items()}, folder))
    for name, value in (('list', list(backbone.values())), ('tensor', backbone[key]), ('str', 'weights'),
                        ('none', None), ('int', 7), ('empty_dict', {}), ('int_keys', {i: v for i, v in
                                                                                     enumerate(backbone.values())}),
                        ('tuple_keys', {(k,): v for k, v in backbone.items()}),
                        ('mixed_keys', {**backbone, 3: torch.zeros(1), None: torch.zeros(1)}),
                        ('bytes_keys', {k.encode(): v for k, v in backbone.items()}),
                        ('state_dict_list', {'state_dict': list(backbone.values())}),
                        ('state_dict_tensor', {'state_dict': backbone[key]}),
                        ('state_dict_none', {'state_dict': None, 'meta': {}}),
                        ('nested', {'state_dict': {'state_dict': {'model': backbone}}}),
                        ('deep', {'state_dict': OrderedDict(backbone), 'meta': [[[[[[[[[[[]]]]]]]]]]]}),
                        ('long_key', {**backbone, 'k' * 100000: torch.zeros(1)}),
                        ('only_prefix_keys', {'backbone.': torch.zeros(1), '.': torch.zeros(1), '': torch.zeros(1)}),
                        ('other_model', {'conv1.weight': torch.zeros(4, 3, 7, 7), 'fc.bias': torch.zeros(4)}),
                        ('shared_storage', {k: backbone[key] for k in backbone}),
                        ('many_keys', {f'x.{i}': torch.zeros(1) for i in range(500)})):
        add('wrong tensors', f'container_{name}.pth', _torch_bytes(value))

    data = seeds['backbone.safetensors']
    (length,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + length])
    first = next(k for k in header if k != '__metadata__')
    offsets = header[first]['data_offsets']

    def edited(**entry) -> bytes:
        return json.dumps({**header, first: {**header[first], **entry}}).encode()

    for name, content in (
            ('declared_0', _with_header(data, data[8:8 + length], 0)),
            ('declared_huge', _with_header(data, data[8:8 + length], 1 << 62)),
            ('declared_1tb', _with_header(data, data[8:8 + length], 1 << 40)),
            ('declared_past_end', _with_header(data, data[8:8 + length], len(data))),
            ('declared_short', _with_header(data, data[8:8 + length], length - 1)),
            ('not_json', _with_header(data, b'{"a": ')), ('json_list', _with_header(data, b'[]')),
            ('json_empty', _with_header(data, b'{}')), ('json_number', _with_header(data, b'{"a": 1}')),
            ('not_utf8', _with_header(data, b'{"\xff\xfe": 1}')), ('nul_header', _with_header(data, b'\0' * 64)),
            ('dtype_unknown', _with_header(data, edited(dtype='XX'))),
            ('dtype_wider', _with_header(data, edited(dtype='F64'))),
            ('dtype_bool', _with_header(data, edited(dtype='BOOL'))),
            ('shape_negative', _with_header(data, edited(shape=[-1, 3]))),
            ('shape_huge', _with_header(data, edited(shape=[1 << 40, 1 << 40]))),
            ('shape_overflow', _with_header(data, edited(shape=[1 << 62, 1 << 62, 1 << 62]))),
            ('shape_string', _with_header(data, edited(shape='big'))),
            ('offsets_reversed', _with_header(data, edited(data_offsets=offsets[::-1]))),
            ('offsets_past_end', _with_header(data, edited(data_offsets=[0, 1 << 40]))),
            ('offsets_negative', _with_header(data, edited(data_offsets=[-8, 8]))),
            ('offsets_missing', _with_header(data, json.dumps({**header, first: {'dtype': 'F32', 'shape': [1]}})
                                             .encode())),
            ('offsets_shifted', _with_header(data, edited(data_offsets=[o + 4 for o in offsets]))),
            ('metadata_not_str', _with_header(data, json.dumps({**header, '__metadata__': {'a': 1}}).encode())),
            ('metadata_list', _with_header(data, json.dumps({**header, '__metadata__': [1]}).encode())),
            ('header_only', data[:8 + length]), ('data_only', data[8 + length:])):
        add('safetensors header', f'{name}.safetensors', content)

    for name, content in (('storage_1tb', _declared_tensor(1 << 40, (4,))),
                          ('storage_huge', _declared_tensor(1 << 62, (4,))),
                          ('storage_negative', _declared_tensor(-16, (4,))),
                          ('size_1tb', _declared_tensor(16, (1 << 40,))),
                          ('size_overflow', _declared_tensor(16, (1 << 62, 1 << 62))),
                          ('size_negative', _declared_tensor(16, (-4,))),
                          ('zip_member_4gb', _patch_zip_size(seeds['backbone.pth'], 'data/0', 0xFFFFFFF0)),
                          ('zip_pkl_4gb', _patch_zip_size(seeds['backbone.pth'], 'data.pkl', 0xFFFFFFF0)),
                          ('zip_member_0', _patch_zip_size(seeds['backbone.pth'], 'data/0', 0))):
        add('huge declared size', f'{name}.pth', content)

    for suffix in ('pth', 'bin', 'safetensors'):
        add('empty file', f'empty.{suffix}', b'')
    for suffix in ('pth', 'safetensors'):
        (folder / f'special-directory.{suffix}').mkdir()
        index[f'special-directory.{suffix}'] = 'special file'
    os.mkfifo(folder / 'special-fifo.pth')
    index['special-fifo.pth'] = 'special file'
    os.symlink(folder / 'nowhere.pth', folder / 'special-dangling.pth')
    index['special-dangling.pth'] = 'special file'
    (folder / 'index.json').write_text(json.dumps(index))
    return index


# ----------------------------------------------------------------------------------------------------------------
# The child: each file through each loading path
# ----------------------------------------------------------------------------------------------------------------

class TimeLimit(BaseException):  # not an Exception: the code under test must not catch it
    pass


def _alarm(signum, frame):
    raise TimeLimit(f'no result within {TIME_LIMIT} s')


def _paths(folder: Path) -> Dict[str, Callable[[Path], None]]:
    from mmengine.config import ConfigDict
    from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

    from convnext_dense import ConvNeXt
    from convnext_dense.engine.hooks import CheckpointFitHook
    from convnext_dense.tools.convert_checkpoint import convert_checkpoint

    backbone, model = ConvNeXt(arch=TINY), WholeModel()  # built once: a load replaces what the last one left

    def init_cfg(path: Path) -> None:
        backbone.init_cfg = dict(type='Pretrained', checkpoint=str(path))
        backbone.is_init = False  # each file a first init: a second init_weights keeps the weights (mmengine's rule)
        backbone.init_weights()

    def load_from(path: Path) -> None:  # what Runner.load_checkpoint does
        checkpoint = _load_checkpoint(str(path), map_location='cpu')
        runner = type('Runner', (), dict(model=model, cfg=ConfigDict(load_from=str(path)), work_dir=str(folder)))
        CheckpointFitHook().after_load_checkpoint(runner, checkpoint)
        _load_checkpoint_to_model(model, checkpoint, strict=False, revise_keys=[(r'^module\.', '')])

    def converter(path: Path) -> None:
        convert_checkpoint(path, folder / 'converted' / 'out.pth')

    return dict(init_cfg=init_cfg, load_from=load_from, converter=converter)


def main(folder: Path) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    signal.signal(signal.SIGALRM, _alarm)
    import logging

    from mmengine.logging import MMLogger
    MMLogger.get_instance('fuzz', log_level='ERROR')  # the load reports of the correct loads are not the point
    logging.disable(logging.WARNING)
    warnings.simplefilter('ignore')
    (folder / 'converted').mkdir(exist_ok=True)
    paths = _paths(folder)
    index = json.loads((folder / 'index.json').read_text())
    for name, category in index.items():
        for path_name, load in paths.items():
            start = time.monotonic()
            print(json.dumps(dict(file=name, path=path_name, started=True)), flush=True)
            signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
            try:
                load(folder / name)
                outcome, message = 'loaded', ''
            except TimeLimit as e:
                outcome, message = 'hang', str(e)
            except (ValueError, TypeError, FileNotFoundError) as e:
                outcome, message = 'error', f'{type(e).__name__}: {e}'
            except BaseException as e:  # noqa: B036 - reported, not hidden: the test fails on it
                outcome, message = 'crash', f'{type(e).__name__}: {e}'
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            print(json.dumps(dict(file=name, category=category, path=path_name, outcome=outcome, message=message,
                                  seconds=time.monotonic() - start)), flush=True)


if __name__ == '__main__':
    main(Path(sys.argv[1]))
