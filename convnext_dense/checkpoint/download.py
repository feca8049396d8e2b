"""Checkpoints named by URL: downloaded once into a cache, verified, then read like a local file.

``resolve`` is where a checkpoint path becomes a local file (``reader.read_checkpoint`` and ``tools/test.py`` call
it): an ``http://`` / ``https://`` URL becomes its cached copy, downloaded first if it is not there yet; an
``hf://ORG/REPO[/FILE]`` name becomes its file in the huggingface_hub cache (``hub``); any other path is returned as
it is, so local paths never reach the network.

* The cache is torch hub's folder, as mmengine's own URL loader uses it: ``$TORCH_HOME/hub/checkpoints`` (default
  ``~/.cache/torch/hub/checkpoints``), with the URL's host and path below it, so that files of one name from
  different places (every Hugging Face ``model.safetensors``) never take each other's place.
* A download is written to ``<file>.partial`` and renamed to its name only once complete and verified: a transfer
  cut midway leaves no file, and the next run downloads again.
* A lock file (``<file>.lock``) lets one process download while the others (the ranks of a DDP job, other jobs on
  the same cache) wait for its file.
* The SHA-256 is checked against the hash given in the URL (pip's ``#sha256=<hex>``), else against the hash prefix
  of an OpenMMLab / torch hub file name (``...-4570f792.pth``); a mismatch deletes the download.
* ``CONVNEXT_DENSE_OFFLINE=1`` forbids downloads: a URL must then be in the cache already.
"""
import hashlib
import http.client
import os
import re
from typing import Optional, Tuple, Union
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import torch
from filelock import FileLock, Timeout
from tqdm import tqdm

from ..utils.errors import CheckpointError, MissingFileError
from ..utils.logging import print_log
from . import hub

URL_SCHEMES = ('http://', 'https://')
OFFLINE_VARIABLE = 'CONVNEXT_DENSE_OFFLINE'
TIMEOUT_S = 60.0  # per connection attempt and per read: a stalled server fails the run instead of hanging it
CHUNK = 1 << 20
NAME_HASH = re.compile(r'-([0-9a-f]{8,64})\.\w+$')  # torch hub's convention: first hex digits of the file's SHA-256
GIVEN_HASH = re.compile(r'^sha256=([0-9a-f]{8,64})$')  # pip's URL fragment


def is_url(path: Union[str, os.PathLike]) -> bool:
    """Whether ``path`` is an ``http://`` or ``https://`` URL."""
    return isinstance(path, str) and path.lower().startswith(URL_SCHEMES)


def cache_dir() -> str:
    """The cache folder: torch hub's ``<hub dir>/checkpoints``, i.e. ``$TORCH_HOME/hub/checkpoints``."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints')


def cache_path(url: str) -> str:
    """Where ``url`` is cached: ``cache_dir()/<host>[:<port>]/<path of the URL>``."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split('/') if s]
    host = (parts.hostname or '') + (f':{parts.port}' if parts.port else '')
    if not parts.hostname or not segments or any(s in ('.', '..') for s in [host, *segments]):
        raise CheckpointError(f'checkpoint URL {url!r} names no file: expected http(s)://host/path/file.pth')
    return os.path.join(cache_dir(), host, *segments)


def expected_hash(url: str) -> Optional[Tuple[str, str]]:
    """(the expected SHA-256 or its first hex digits, where it comes from), or None if nothing says.

    Raises:
        ValueError: The URL has a fragment that is not ``sha256=<8 to 64 hex digits>``.
    """
    parts = urlsplit(url)
    if parts.fragment:
        given = GIVEN_HASH.match(parts.fragment.lower())
        if not given:
            raise CheckpointError(f'checkpoint URL {url!r}: the part after "#" must be sha256=<8 to 64 hex digits of '
                                  f'the file\'s SHA-256>, not {parts.fragment!r}')
        return given.group(1), 'given in the URL'
    named = NAME_HASH.search(os.path.basename(parts.path))
    return (named.group(1), 'the hash prefix in the file name') if named else None


def resolve(path: Union[str, os.PathLike]) -> Union[str, os.PathLike]:
    """The local file for a checkpoint path: a URL's or an ``hf://`` name's cached copy (downloaded first if
    missing), else ``path``."""
    if hub.is_hf(path):
        return hub.resolve(path)
    return download(path) if is_url(path) else path


def download(url: str) -> str:
    """The cached copy of ``url``, downloaded (once, whatever the number of processes asking) if not cached yet.

    A progress bar is shown when stderr is a terminal.

    Args:
        url: An http(s) URL; ``#sha256=<hex>`` at its end gives the expected hash.

    Returns:
        The local path of the verified file.

    Raises:
        FileNotFoundError: The server has no such file (404, 410), or ``CONVNEXT_DENSE_OFFLINE`` is set and the
            file is not cached.
        OSError: The host is unreachable, the transfer timed out or was cut, or the server answered another error.
        ValueError: The URL is malformed, or the file's SHA-256 differs from the expected one.
    """
    target = cache_path(url)
    want = expected_hash(url)
    if os.path.isfile(target):
        if want:
            _verify(url, target, _sha256(target), want, cached=True)
        return target
    if os.environ.get(OFFLINE_VARIABLE, '') not in ('', '0'):
        raise MissingFileError(f'{url} is not in the cache ({target}) and {OFFLINE_VARIABLE} forbids downloads: '
                               'copy the file to that path, or unset the variable')
    os.makedirs(os.path.dirname(target), exist_ok=True)
    lock = FileLock(target + '.lock')
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print_log(f'convnext_dense: waiting for another process to download {url} to {target}', logger='current')
        lock.acquire()
    try:
        if not os.path.isfile(target):  # else the process that held the lock has downloaded it
            _download(url, target, want)
    finally:
        lock.release()
    return target


def _download(url: str, target: str, want: Optional[Tuple[str, str]]) -> None:
    """Transfer ``url`` to ``target + '.partial'``, verify it, and only then rename it to ``target``."""
    partial = target + '.partial'
    print_log(f'convnext_dense: downloading {url} to {target}', logger='current')
    try:
        digest = _transfer(url, target, partial)
        if want:
            _verify(url, partial, digest, want, cached=False)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _transfer(url: str, target: str, partial: str) -> str:
    """Write the body of ``url`` to ``partial``, flushed to disk; its SHA-256 hex digest."""
    failed = f'cannot download {url} to {target}'
    sha256 = hashlib.sha256()
    received = 0
    try:
        with urlopen(Request(url, headers={'User-Agent': 'convnext_dense'}), timeout=TIMEOUT_S) as response, \
                open(partial, 'wb') as file:
            size = response.length  # None without a Content-Length header
            with tqdm(total=size, unit='B', unit_scale=True, unit_divisor=1024, desc=os.path.basename(target),
                      disable=None) as bar:  # None: shown on a terminal only, not in log files
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    file.write(chunk)
                    sha256.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            file.flush()
            os.fsync(file.fileno())
    except HTTPError as e:
        error = FileNotFoundError if e.code in (404, 410) else OSError
        raise error(f'{failed}: HTTP {e.code} {e.reason}; nothing was cached') from None
    except (URLError, OSError, http.client.HTTPException) as e:  # refused, unknown host, timed out, cut
        reason = e.reason if isinstance(e, URLError) else e  # the exception behind urllib's wrapper
        detail = f'{type(reason).__name__}: {reason}' if isinstance(reason, BaseException) else reason
        raise OSError(f'{failed}: {detail}; nothing was cached') from None
    if size is not None and received < size:  # http.client ends the body quietly when the server closes early
        raise OSError(f'{failed}: the connection closed after {received} of {size} bytes; nothing was cached')
    return sha256.hexdigest()


def _sha256(path: str) -> str:
    sha256 = hashlib.sha256()
    with open(path, 'rb') as file:
        for chunk in iter(lambda: file.read(CHUNK), b''):
            sha256.update(chunk)
    return sha256.hexdigest()


def _verify(url: str, path: str, digest: str, want: Tuple[str, str], cached: bool) -> None:
    """Raise a ``ValueError`` if ``digest`` does not start with the expected hash (a download is deleted by the
    caller; a cached file is left for the user to inspect)."""
    expected, source = want
    if digest.startswith(expected):
        return
    fate = f'the cached file {path} is kept: delete it to download again' if cached else 'the download was deleted'
    raise CheckpointError(f'{url}: SHA-256 mismatch, expected {expected} ({source}), got {digest}; {fate}')
