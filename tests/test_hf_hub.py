"""``hf://ORG/REPO[/FILE]`` checkpoints through huggingface_hub, against a server on 127.0.0.1 that answers what
huggingface_hub asks: ``HEAD`` / ``GET /{repo}/resolve/{revision}/{file}`` with ``X-Repo-Commit``, ``ETag`` and
``Content-Length``, the tree API for listing, 401 with ``X-Error-Code: GatedRepo`` for a gated repo.

huggingface_hub reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` when it is imported, so each setting runs in a
subprocess (``probe``): one online, one offline on the cache the first one filled.
"""
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import torch
from safetensors.torch import save
from test_checkpoint_2025 import dinov3_file, dinov3_maps, timm_copy

from conftest import REPO, TINY, randomize
from convnext_dense import ConvNeXt, load_backbone_checkpoint
from convnext_dense.checkpoint import hub
from convnext_dense.checkpoint.reader import read_checkpoint

pytest.importorskip('huggingface_hub', reason='the hf extra (pip install "convnext_dense[hf]") is not installed')

COMMIT = 'c0ffee' * 6 + 'c0ff'  # 40 hex digits, as the Hub's X-Repo-Commit


def backbone_bytes(fmt: str, seed: int) -> bytes:
    """A random backbone's state dict as a file: 'safetensors', 'pth', or 'whole' (an mmdet / mmseg model's)."""
    sd = {k: v.contiguous() for k, v in randomize(ConvNeXt(arch=TINY), seed).state_dict().items()}
    if fmt == 'safetensors':
        return save(sd)
    buffer = io.BytesIO()
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in sd.items()}} if fmt == 'whole' else sd, buffer)
    return buffer.getvalue()


class Hub(http.server.ThreadingHTTPServer):
    """``repos``: repo id -> {path: bytes}; ``gated``: repo ids answering 401 GatedRepo; ``requests`` logs
    (method, path)."""
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(('127.0.0.1', 0), HubHandler)
        self.repos: Dict[str, Dict[str, bytes]] = {}
        self.gated = set()
        self.requests: List[tuple] = []
        threading.Thread(target=self.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f'http://127.0.0.1:{self.server_port}'


class HubHandler(http.server.BaseHTTPRequestHandler):
    def _error(self, code: int, error_code: str, message: str) -> None:
        self.send_response(code)
        self.send_header('X-Error-Code', error_code)
        self.send_header('X-Error-Message', message)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def _answer(self, body: bool) -> None:
        hub_: Hub = self.server  # type: ignore[assignment]
        path = self.path.split('?')[0]
        hub_.requests.append((self.command, path))
        parts = path.strip('/').split('/')
        tree = parts[:2] == ['api', 'models'] and len(parts) >= 6 and parts[4] == 'tree'
        repo = '/'.join(parts[2:4]) if tree else '/'.join(parts[:2])
        if repo in hub_.gated:
            return self._error(401, 'GatedRepo', f'Access to model {repo} is restricted.')
        files = hub_.repos.get(repo)
        if files is None:
            return self._error(404, 'RepoNotFound', 'Repository not found')
        if tree:
            data = json.dumps([{'type': 'file', 'oid': hashlib.sha1(v).hexdigest(), 'size': len(v), 'path': k}
                               for k, v in files.items()]).encode()
            headers = {'Content-Type': 'application/json'}
        elif len(parts) >= 5 and parts[2] == 'resolve' and '/'.join(parts[4:]) in files:
            data = files['/'.join(parts[4:])]
            headers = {'X-Repo-Commit': COMMIT, 'ETag': f'"{hashlib.sha256(data).hexdigest()}"'}
        else:
            return self._error(404, 'EntryNotFound', 'Entry not found')
        self.send_response(200)
        for key, value in {**headers, 'Content-Length': str(len(data))}.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def log_message(self, *args) -> None:
        pass


# What one subprocess runs: each case prints `name: OK <detail>` or `name: <ErrorType>: <message>`.
PROBE = r'''
import os, sys, torch
from mmengine.runner import load_checkpoint
from convnext_dense import ConvNeXt, load_backbone_checkpoint
TINY = dict(depths=(1, 1, 2, 1), channels=(8, 16, 24, 32))
for case in sys.argv[1:]:
    name, _, target = case.partition('=')
    try:
        if name.startswith('maps'):  # the maps of a fixed image, saved as HF_HOME/NAME.pt
            model = ConvNeXt(arch=TINY)
            detail = load_backbone_checkpoint(model, target).layout
            x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                torch.save(dict(x=x, maps=list(model.eval()(x))), os.path.join(os.environ['HF_HOME'], name + '.pt'))
        elif name.startswith('load_from'):
            model = torch.nn.Module()
            model.backbone = ConvNeXt(arch=TINY)
            load_checkpoint(model, target)
            detail = float(model.backbone.stages[0][0].gamma.sum())
        elif name.startswith('init_cfg'):
            model = ConvNeXt(arch=TINY, init_cfg=dict(type='Pretrained', checkpoint=target))
            model.init_weights()
            detail = float(model.stages[0][0].gamma.sum())
        else:
            detail = load_backbone_checkpoint(ConvNeXt(arch=TINY), target).layout
        print(f'{name}: OK {detail}')
    except Exception as e:
        print(f'{name}: {type(e).__name__}: {e}')
'''


def probe(hub_: Hub, home: Path, cases: Dict[str, str], offline: bool = False) -> Dict[str, str]:
    env = {**os.environ, 'HF_ENDPOINT': hub_.endpoint, 'HF_HOME': str(home), 'HF_HUB_OFFLINE': '1' if offline else '0',
           'HF_HUB_DISABLE_TELEMETRY': '1', 'OMP_NUM_THREADS': '1'}
    env.pop('HF_TOKEN', None)
    done = subprocess.run([sys.executable, '-c', PROBE, *(f'{k}={v}' for k, v in cases.items())], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if ': ' in line and line.split(':')[0] in cases]
    return dict(line.split(': ', 1) for line in lines)


def timm_dinov3_bytes(seed: int) -> bytes:
    """A DINOv3 ConvNeXt in timm's layout (``timm/convnext_*.dinov3_lvd1689m``): ``test_checkpoint_2025``'s rules."""
    return save({k: v.contiguous() for k, v in timm_copy(dinov3_file(seed)).items()})


def gamma_sum(data: bytes) -> float:
    sd = torch.load(io.BytesIO(data), weights_only=True)
    gamma = sd['state_dict']['backbone.stages.0.0.gamma'] if 'state_dict' in sd else sd['stages.0.0.gamma']
    return float(gamma.sum())


@pytest.fixture(scope='module')
def served() -> Iterator[Hub]:
    hub_ = Hub()
    hub_.repos = {
        'facebook/dinov3-like': {'model.safetensors': backbone_bytes('safetensors', 1), 'config.json': b'{}'},
        'laion/CLIP-like': {'open_clip_pytorch_model.bin': backbone_bytes('pth', 2),
                            'open_clip_model.safetensors': backbone_bytes('safetensors', 2),
                            'open_clip_config.json': b'{}'},
        'org/several': {'a.pth': backbone_bytes('pth', 3), 'b.pth': backbone_bytes('pth', 4)},
        'org/whole': {'sub/whole.pth': backbone_bytes('whole', 5)},
        'timm/convnext_tiny.dinov3-like': {'model.safetensors': timm_dinov3_bytes(6), 'config.json': b'{}'},
    }
    hub_.gated = {'facebook/gated'}
    yield hub_
    hub_.shutdown()
    hub_.server_close()


@pytest.fixture(scope='module')
def online(served, tmp_path_factory):
    """One online run of every case; the cache it leaves behind; the server's log."""
    home = tmp_path_factory.mktemp('hf_home')
    results = probe(served, home, {
        'repo': 'hf://facebook/dinov3-like', 'two_formats': 'hf://laion/CLIP-like',
        'file': 'hf://org/several/b.pth', 'several': 'hf://org/several', 'gated': 'hf://facebook/gated',
        'no_repo': 'hf://org/nothing', 'no_file': 'hf://org/several/c.pth', 'bad_name': 'hf://org',
        'init_cfg': 'hf://org/several/a.pth', 'load_from': 'hf://org/whole/sub/whole.pth',
        'maps_timm_dinov3': 'hf://timm/convnext_tiny.dinov3-like'})
    return results, home, list(served.requests)


def test_names_load_through_the_hub_with_one_line_errors(online, served):
    results, _, requests = online
    assert results['repo'] == 'OK official' and results['file'] == 'OK official'
    assert results['two_formats'] == 'OK official'
    downloads = [path for method, path in requests if method == 'GET' and '/resolve/' in path]
    assert '/laion/CLIP-like/resolve/main/open_clip_model.safetensors' in downloads
    assert not any(path.endswith('.bin') for path in downloads)  # the safetensors twin is taken, the .bin left
    assert results['several'] == ('CheckpointError: hf://org/several: the repo holds 2 weights files (a.pth, b.pth); '
                                  'name one, e.g. hf://org/several/a.pth')
    assert results['gated'] == (f'PermissionError: hf://facebook/gated: facebook/gated is a gated repository and this '
                                f'machine has no access: request access on {served.endpoint}/facebook/gated and log '
                                'in (`hf auth login`, or set HF_TOKEN)')
    assert results['no_repo'].startswith('MissingFileError: hf://org/nothing: no repository org/nothing on ')
    assert results['no_file'] == "MissingFileError: hf://org/several/c.pth: org/several has no file 'c.pth'"
    assert results['bad_name'].startswith("CheckpointError: checkpoint 'hf://org': expected hf://ORG/REPO")
    assert results['init_cfg'] == f'OK {gamma_sum(served.repos["org/several"]["a.pth"])}'
    assert results['load_from'] == f'OK {gamma_sum(served.repos["org/whole"]["sub/whole.pth"])}'


def test_a_timm_dinov3_repo_gives_the_maps_of_its_file_on_disk(online, served, tmp_path):
    """hf://ORG/REPO of a timm-layout DINOv3 ConvNeXt: the file the hub serves, read from disk, gives the same maps
    (DINOv3's own: its final norm on stage 3)."""
    results, home, _ = online
    assert results['maps_timm_dinov3'] == 'OK timm_dinov3'
    hub_run = torch.load(home / 'maps_timm_dinov3.pt', weights_only=True)
    path = tmp_path / 'model.safetensors'
    path.write_bytes(served.repos['timm/convnext_tiny.dinov3-like']['model.safetensors'])
    model = ConvNeXt(arch=TINY)
    assert load_backbone_checkpoint(model, path).layout == 'timm_dinov3'
    with torch.no_grad():
        from_disk = model.eval()(hub_run['x'])
    dense, _ = dinov3_maps(dinov3_file(6), hub_run['x'])
    assert len(hub_run['maps']) == len(from_disk) == len(dense) == 4
    for hub_map, disk_map, want in zip(hub_run['maps'], from_disk, dense):
        torch.testing.assert_close(hub_map, disk_map, rtol=0, atol=1e-5)
        torch.testing.assert_close(disk_map, want, rtol=0, atol=1e-5)


def test_offline_names_resolve_from_the_cache_or_fail_clearly(online, served):
    _, home, _ = online
    before = len(served.requests)
    results = probe(served, home, {'repo': 'hf://facebook/dinov3-like', 'file': 'hf://org/several/b.pth',
                                   'uncached': 'hf://org/several/a2.pth', 'uncached_repo': 'hf://org/other'},
                    offline=True)
    assert results['repo'] == 'OK official' and results['file'] == 'OK official'  # the snapshot's one weights file
    assert results['uncached'].startswith('MissingFileError: hf://org/several/a2.pth is not in the Hugging Face cache')
    assert results['uncached_repo'].startswith('MissingFileError: hf://org/other is not in the Hugging Face cache')
    assert all('HF_HUB_OFFLINE=1 forbids downloads' in results[case] for case in ('uncached', 'uncached_repo'))
    assert len(served.requests) == before  # offline: nothing asked of the server


def test_without_the_extra_an_hf_name_is_one_line_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, 'huggingface_hub', None)  # what a missing package looks like to import
    with pytest.raises(ImportError, match=r'^hf://org/repo: hf:// names need huggingface_hub: pip install '
                                          r'"convnext_dense\[hf\]"$'):
        read_checkpoint('hf://org/repo')
    assert hub.pick_weights(['pytorch_model.bin', 'model.safetensors', 'README.md'], 'n') == 'model.safetensors'
