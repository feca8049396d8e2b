"""Checkpoints by URL, against a threaded HTTP server on 127.0.0.1: a download loads the source's features and is
then read from the cache with the server gone; failures are one line naming the URL and the cache path and leave
nothing cached; hashes are checked; two processes asking at once download once."""
import hashlib
import http.server
import io
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, load_from_http
from torch import nn

from conftest import REPO, TINY, finish, last_line, output, randomize, tool
from convnext_dense import ConvNeXt, load_backbone_checkpoint
from convnext_dense.checkpoint import download as dl
from convnext_dense.engine.checkpoint_loader import (
    install_safe_checkpoint_loader,
    load_from_local_safe,
    uninstall_safe_checkpoint_loader,
)
from convnext_dense.tools.convert_checkpoint import convert_checkpoint

SEG = REPO / 'tests' / 'configs' / 'tiny_seg.py'


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; a path in ``server.cut`` gets its full Content-Length but half its body, then the
    connection closes; while ``server.hold`` is set, bodies wait for it to be released."""

    def do_GET(self) -> None:
        server: Server = self.server  # type: ignore[assignment]
        server.requests.append(self.path)
        body = server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if server.hold is not None:
            server.hold.wait(timeout=120)
        self.wfile.write(body[:len(body) // 2] if self.path in server.cut else body)
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(('127.0.0.1', 0), Handler)
        self.files: Dict[str, bytes] = {}
        self.requests: List[str] = []
        self.cut: Set[str] = set()
        self.hold: Optional[threading.Event] = None
        threading.Thread(target=self.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True).start()

    def url(self, path: str) -> str:
        return f'http://127.0.0.1:{self.server_port}{path}'

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server()
    yield httpd
    if httpd.hold is not None:
        httpd.hold.set()
    httpd.stop()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache: torch hub's folder under a fresh TORCH_HOME."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.delenv(dl.OFFLINE_VARIABLE, raising=False)
    return tmp_path / 'torch' / 'hub' / 'checkpoints'


def serialized(obj: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached_files(cache: Path) -> List[str]:
    """Every file in the cache but the lock files."""
    return sorted(p.name for p in cache.rglob('*') if p.is_file() and not p.name.endswith('.lock'))


class Detector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = ConvNeXt(arch=TINY).eval()


def features(model: ConvNeXt, x: torch.Tensor) -> List[torch.Tensor]:
    with torch.no_grad():
        return list(model(x))


def test_url_loads_the_source_features_then_the_cache_serves_without_the_server(server, cache, tmp_path,
                                                                                 monkeypatch):
    source = randomize(ConvNeXt(arch=TINY)).eval()
    body = serialized({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}})
    name = f'/weights/convnext_tiny_whole-{sha256(body)[:8]}.pth'  # an OpenMMLab-style name: its hash is checked
    server.files[name] = body
    url = server.url(name)
    x = torch.randn(1, 3, 32, 32)

    via_init_cfg = ConvNeXt(arch=TINY, init_cfg=dict(type='Pretrained', checkpoint=url)).eval()
    via_init_cfg.init_weights()
    torch.testing.assert_close(features(via_init_cfg, x), features(source, x), rtol=0, atol=0)
    cached = cache / f'127.0.0.1:{server.server_port}' / 'weights' / name.rsplit('/', 1)[1]
    assert cached.read_bytes() == body and server.requests == [name]
    assert cached_files(cache) == [cached.name]  # no partial file left

    server.stop()  # every reader below finds the file in the cache
    fresh = ConvNeXt(arch=TINY).eval()
    assert load_backbone_checkpoint(fresh, url).prefix == 'backbone.'
    detector = Detector()
    assert CheckpointLoader._get_checkpoint_loader(url) is load_from_local_safe  # load_from, --resume, test tools
    load_checkpoint(detector, url, strict=True)
    convert_checkpoint(url, tmp_path / 'clean.safetensors')
    converted = ConvNeXt(arch=TINY).eval()
    load_backbone_checkpoint(converted, tmp_path / 'clean.safetensors')
    for model in (fresh, detector.backbone, converted):
        torch.testing.assert_close(features(model, x), features(source, x), rtol=0, atol=0)

    monkeypatch.setenv(dl.OFFLINE_VARIABLE, '1')
    assert dl.download(url) == str(cached)
    other = server.url('/weights/other.pth')
    with pytest.raises(FileNotFoundError, match=rf'^{re.escape(other)} is not in the cache \(.*other\.pth\) and '
                                                f'{dl.OFFLINE_VARIABLE} forbids downloads'):
        dl.download(other)


@pytest.mark.parametrize('case', ['404', 'dead host', 'timeout', 'cut midway'])
def test_failed_download_is_one_line_naming_url_and_cache_path_and_caches_nothing(case, server, cache, monkeypatch):
    body = serialized({'w': torch.randn(1000)})
    server.files['/w.pth'] = body
    url = server.url('/w.pth')
    if case == '404':
        url, reason = server.url('/missing.pth'), 'HTTP 404 Not Found'
    elif case == 'cut midway':
        server.cut.add('/w.pth')
        reason = f'the connection closed after {len(body) // 2} of {len(body)} bytes'
    else:  # a port that refuses connections, or one that accepts but never answers
        listener = socket.socket()
        listener.bind(('127.0.0.1', 0))
        if case == 'timeout':
            listener.listen(1)
            monkeypatch.setattr(dl, 'TIMEOUT_S', 0.5)
        url = f'http://127.0.0.1:{listener.getsockname()[1]}/w.pth'
        reason = 'ConnectionRefusedError' if case == 'dead host' else 'timed out'
    target = dl.cache_path(url)
    with pytest.raises(OSError) as error:
        ConvNeXt(arch=TINY, init_cfg=dict(type='Pretrained', checkpoint=url)).init_weights()
    message = str(error.value)
    assert message.startswith(f'cannot download {url} to {target}: ') and reason in message and '\n' not in message
    assert cached_files(cache) == []
    if case == 'cut midway':  # the next run downloads again
        server.cut.clear()
        assert Path(dl.download(url)).read_bytes() == body and server.requests == ['/w.pth'] * 2


def test_hash_mismatch_deletes_the_download_and_names_url_and_both_hashes(server, cache):
    body = serialized({'w': torch.randn(10)})
    actual = sha256(body)
    wrong = ('0' if actual[0] != '0' else '1') + actual[1:8]
    server.files.update({f'/model-{wrong}.pth': body, '/model.pth': body})

    cases = {server.url(f'/model-{wrong}.pth'): 'the hash prefix in the file name',
             server.url(f'/model.pth#sha256={wrong}'): 'given in the URL'}
    for url, source in cases.items():
        with pytest.raises(ValueError, match=rf'^{re.escape(url)}: SHA-256 mismatch, expected {wrong} \({source}\), '
                                             f'got {actual}; the download was deleted$'):
            dl.download(url)
    assert cached_files(cache) == []

    path = dl.download(server.url(f'/model.pth#sha256={actual.upper()}'))  # a full hash, any case
    assert Path(path).read_bytes() == body
    with pytest.raises(ValueError, match=r'expected 12345678 \(given in the URL\).*the cached file .* is kept'):
        dl.download(server.url('/model.pth#sha256=12345678'))
    assert cached_files(cache) == ['model.pth']
    with pytest.raises(ValueError, match=r"must be sha256=<8 to 64 hex digits.*not 'md5=abc'"):
        dl.download(server.url('/model.pth#md5=abc'))


def test_two_processes_download_once(server, cache, tmp_path):
    body = serialized({'w': torch.randn(1000)})
    server.files['/shared.pth'] = body
    server.hold = threading.Event()  # the first download waits until the other process waits for the lock
    url = server.url('/shared.pth')
    script = 'import sys; from convnext_dense.checkpoint.download import download; print("at", download(sys.argv[1]))'
    env = {**os.environ, 'TORCH_HOME': str(tmp_path / 'torch')}
    procs = [tool('-c', script, url, env=env) for _ in range(2)]
    deadline = time.monotonic() + 120
    while not (server.requests and any('waiting for another process' in output(p) for p in procs)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [output(p) for p in procs]
        time.sleep(0.1)
    server.hold.set()
    outs = [finish(p) for p in procs]
    assert server.requests == ['/shared.pth']
    assert all(last_line(out) == f'at {dl.cache_path(url)}' for out in outs)
    assert Path(dl.cache_path(url)).read_bytes() == body and cached_files(cache) == ['shared.pth']


def test_test_tool_reads_a_url_and_the_converter_fails_in_one_line(server, cache, seg_env, tmp_path):
    from mmseg.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(Config.fromfile(str(SEG)).model)
    server.files['/seg.pth'] = serialized({'state_dict': model.state_dict(), 'meta': {}})
    env = {**seg_env, 'TORCH_HOME': str(tmp_path / 'torch')}
    test = tool('tools/test.py', str(SEG), server.url('/seg.pth'), '--work-dir', str(tmp_path / 'work'), env=env)
    convert = tool('tools/convert_checkpoint.py', server.url('/gone.pth'), str(tmp_path / 'out.pth'), env=env)
    assert re.search(r'^mIoU: \d', finish(test), re.M)
    gone = server.url('/gone.pth')
    assert last_line(finish(convert, ok=False)) == (f'convert_checkpoint: error: cannot download {gone} to '
                                                    f'{dl.cache_path(gone)}: HTTP 404 Not Found; nothing was cached')
    assert sorted(server.requests) == ['/gone.pth', '/seg.pth']


def test_uninstalling_the_safe_loader_gives_mmengine_its_url_loader_back():
    url = 'https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224.pth'
    uninstall_safe_checkpoint_loader()
    try:
        assert CheckpointLoader._get_checkpoint_loader(url) is load_from_http
    finally:
        install_safe_checkpoint_loader()
    assert CheckpointLoader._get_checkpoint_loader(url) is load_from_local_safe
