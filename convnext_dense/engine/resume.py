"""What a run resumes from, checked before it loads anything: resume that never lies.

mmengine's ``resume=True`` without ``load_from`` resumes from the file that ``WORK_DIR/last_checkpoint`` names, and
silently trains from scratch when there is none; a pointer to a missing or truncated file fails deep inside the
loader without naming the pointer. ``check_resume`` (run by ``AtomicCheckpointHook.before_run``, so through every
tool) makes these explicit:

* ``resume=True`` with nothing to resume from is an error naming the work dir;
* ``resume='auto'`` (for cluster jobs requeued with the same command) resumes when there is something, otherwise
  starts fresh and says so in the log;
* a ``last_checkpoint`` naming a missing or truncated file is an error naming both, with the newest complete
  checkpoint in the folder suggested.
"""
import glob
import os.path as osp
import zipfile
from typing import Optional, Union

from ..utils.errors import CheckpointError, ConfigError, MissingFileError

POINTER = 'last_checkpoint'  # mmengine's name for the file naming the latest checkpoint (read by --resume)
RESUME_AUTO = 'auto'  # resume='auto': resume if there is a checkpoint, else start fresh


def is_complete(path: str) -> bool:
    """Whether ``path`` is a completely written checkpoint: torch writes a zip whose central directory comes last, so
    a file cut short by a kill or a full disk has none. A file in torch's legacy (non-zip) format counts as complete:
    the reader checks it."""
    try:
        with open(path, 'rb') as f:
            head = f.read(4)
        if head and head != b'PK\x03\x04':
            return True
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith('/data.pkl') for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def newest_complete(folder: str) -> Optional[str]:
    """The most recently written complete checkpoint (``*.pth``, not ``best_*``, which hold no optimizer state) in
    ``folder``, or None."""
    candidates = [p for p in glob.glob(osp.join(folder, '*.pth')) if not osp.basename(p).startswith('best_')]
    return next((p for p in sorted(candidates, key=osp.getmtime, reverse=True) if is_complete(p)), None)


def _suggestion(folder: str) -> str:
    newest = newest_complete(folder)
    if newest is None:
        return f'{folder} holds no complete checkpoint: train without --resume to start fresh'
    return f'the newest complete checkpoint in {folder} is {newest}: resume from it with --resume {newest}'


def check_resume(work_dir: str, resume: Union[bool, str, None], load_from: Optional[str]) -> Optional[str]:
    """Check what a run with these settings would resume from.

    Args:
        work_dir: The run's work dir (where ``last_checkpoint`` is).
        resume: The config's ``resume``: False / None, True, or ``'auto'``.
        load_from: The config's ``load_from``; with ``resume``, the checkpoint to resume from (the reader checks it).

    Returns:
        A line for the log when ``resume='auto'`` finds nothing to resume from (the run starts fresh), else None.

    Raises:
        FileNotFoundError: ``resume=True`` and there is no ``last_checkpoint``, or it names a file that does not
            exist.
        ValueError: ``last_checkpoint`` names a truncated file, or ``resume`` is a str other than ``'auto'``.
    """
    if isinstance(resume, str) and resume != RESUME_AUTO:
        raise ConfigError(f'resume={resume!r}; valid: True, False or {RESUME_AUTO!r} (resume if there is something '
                          'to resume from, else start fresh); the checkpoint to resume from goes in load_from')
    if not resume or load_from:
        return None
    pointer = osp.join(work_dir, POINTER)
    if not osp.isfile(pointer):
        if resume == RESUME_AUTO:
            return f'resume={RESUME_AUTO!r}: nothing to resume from in {work_dir} (no {POINTER}): starting fresh'
        raise MissingFileError(f'--resume: nothing to resume from in {work_dir}: it has no {POINTER}. '
                               f'{_suggestion(work_dir) if osp.isdir(work_dir) else "The work dir does not exist"}'
                               f"; '--resume auto' starts fresh when there is nothing to resume from")
    with open(pointer) as f:
        target = f.read().strip()
    folder = osp.dirname(target) or work_dir
    if not osp.isfile(target):
        raise MissingFileError(f'{pointer} names {target!r}, which does not exist; {_suggestion(folder)}')
    if not is_complete(target):
        raise CheckpointError(f'{pointer} names {target}, which is truncated (written only in part); '
                              f'{_suggestion(folder)}')
    return None

