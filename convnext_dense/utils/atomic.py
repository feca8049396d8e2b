"""Files written whole or not at all: a crash at any moment leaves the old file or the complete new one."""
import os
import os.path as osp
from typing import Union

PARTIAL_SUFFIX = '.partial'  # a file being written; renamed to its real name once complete


def _fsync_dir(path: str) -> None:
    """Make a rename inside ``path`` durable (a power loss after ``os.replace`` could otherwise undo it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(partial: str, path: str) -> None:
    """Flush ``partial`` to disk and rename it to ``path`` in one step: readers see the old file or the new one."""
    with open(partial, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(partial, path)  # atomic within one file system: partial sits next to path
    _fsync_dir(osp.dirname(osp.abspath(path)))


def write_atomic(path: str, data: Union[str, bytes]) -> None:
    """Write ``data`` to ``path`` so that a crash at any point leaves either the old file or the complete new one.

    The data goes to ``path + PARTIAL_SUFFIX`` first; a kill before the rename leaves only that partial file,
    which the next write replaces.
    """
    partial = path + PARTIAL_SUFFIX
    with open(partial, 'wb') as f:
        f.write(data.encode() if isinstance(data, str) else data)
    commit(partial, path)
