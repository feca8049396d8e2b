"""Checkpoints named by Hugging Face repository: ``hf://ORG/REPO`` (the repo's one weights file) or
``hf://ORG/REPO/PATH/IN/REPO``, fetched through ``huggingface_hub`` (the optional extra ``convnext_dense[hf]``).

``huggingface_hub`` does the work a user expects of it: its cache (``HF_HOME``, default ``~/.cache/huggingface``),
its token for gated repos (``HF_TOKEN`` or a saved ``hf auth login``), ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE=1``. It
is imported only when such a name is used. The file is then read by the safe reader like any local file.

A name without a file takes the repo's one weights file; a repo holding one ``.safetensors`` file beside ``.bin``
files (one model in two formats: OpenCLIP's ``open_clip_pytorch_model.bin`` / ``open_clip_model.safetensors``, HF's
``pytorch_model.bin`` / ``model.safetensors``) takes the safetensors; more than one and none named is an error
listing them. Under ``HF_HUB_OFFLINE=1`` the files are those of the cached snapshot. Every failure is one line.
"""
import os
from types import ModuleType
from typing import List, Optional, Tuple

from ..utils.errors import CheckpointError, MissingFileError

HF_SCHEME = 'hf://'
EXTRA = 'hf'  # pip install 'convnext_dense[hf]'
WEIGHT_SUFFIXES = ('.safetensors', '.bin', '.pth', '.pt', '.ckpt')


def is_hf(path: object) -> bool:
    """Whether ``path`` is an ``hf://`` name."""
    return isinstance(path, str) and path.startswith(HF_SCHEME)


def parse(name: str) -> Tuple[str, Optional[str]]:
    """('ORG/REPO', the file's path in the repo or None) of ``hf://ORG/REPO[/FILE]``.

    Raises:
        ValueError: The name has no ORG/REPO.
    """
    parts = [p for p in name[len(HF_SCHEME):].split('/') if p]
    if len(parts) < 2 or any(p in ('.', '..') for p in parts):
        raise CheckpointError(f'checkpoint {name!r}: expected hf://ORG/REPO (the repo\'s weights file) or '
                              'hf://ORG/REPO/FILE')
    return '/'.join(parts[:2]), '/'.join(parts[2:]) or None


def pick_weights(files: List[str], name: str) -> str:
    """The weights file among a repo's ``files`` (see the module docstring).

    Raises:
        FileNotFoundError: No weights file.
        ValueError: Several different ones.
    """
    weights = sorted(f for f in files if f.endswith(WEIGHT_SUFFIXES))
    safetensors = [f for f in weights if f.endswith('.safetensors')]
    if len(weights) == 1:
        return weights[0]
    if len(safetensors) == 1 and all(f.endswith('.bin') for f in weights if f != safetensors[0]):
        return safetensors[0]  # one model saved twice
    if not weights:
        raise MissingFileError(f'{name}: the repo holds no weights file ({", ".join(WEIGHT_SUFFIXES)}); its files: '
                               f'{", ".join(sorted(files)) or "none"}')
    raise CheckpointError(f'{name}: the repo holds {len(weights)} weights files ({", ".join(weights)}); name one, e.g. '
                          f'{name.rstrip("/")}/{weights[0]}')


def _import_hub(name: str) -> ModuleType:
    try:
        import huggingface_hub
        import huggingface_hub.constants
        import huggingface_hub.errors  # noqa: F401  (submodules, not attributes of the package until imported)
    except ImportError:
        raise ImportError(f'{name}: hf:// names need huggingface_hub: pip install "convnext_dense[{EXTRA}]"'
                          ) from None
    return huggingface_hub


def _repo_files(hub: ModuleType, repo_id: str) -> List[str]:
    """The files of ``repo_id``: listed by the Hub's tree API, or, offline, those of the cached snapshot."""
    if not hub.constants.HF_HUB_OFFLINE:
        return hub.list_repo_files(repo_id)
    snapshot = hub.snapshot_download(repo_id, local_files_only=True)
    return [os.path.relpath(os.path.join(root, f), snapshot).replace(os.sep, '/')
            for root, _, names in os.walk(snapshot) for f in names]


def resolve(name: str) -> str:
    """The local path of an ``hf://`` checkpoint: its file in the huggingface_hub cache, downloaded if missing.

    Raises:
        ImportError: huggingface_hub is not installed.
        ValueError: A malformed name, or several weights files and none named.
        PermissionError: A gated repo this machine has no access to.
        FileNotFoundError: No such repo or file, or ``HF_HUB_OFFLINE=1`` and it is not cached.
        OSError: The Hub could not be reached or answered another error.
    """
    hub = _import_hub(name)
    errors = hub.errors
    repo_id, filename = parse(name)
    endpoint = hub.constants.ENDPOINT
    try:
        if filename is None:
            filename = pick_weights(_repo_files(hub, repo_id), name)
        return hub.hf_hub_download(repo_id, filename)
    except errors.GatedRepoError:
        raise PermissionError(f'{name}: {repo_id} is a gated repository and this machine has no access: request '
                              f'access on {endpoint}/{repo_id} and log in (`hf auth login`, or set HF_TOKEN)') from None
    except errors.RepositoryNotFoundError:
        raise MissingFileError(f'{name}: no repository {repo_id} on {endpoint} (a private one needs a login: '
                               '`hf auth login`, or HF_TOKEN)') from None
    except (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled):
        if hub.constants.HF_HUB_OFFLINE:
            raise MissingFileError(f'{name} is not in the Hugging Face cache ({hub.constants.HF_HUB_CACHE}) and '
                                   'HF_HUB_OFFLINE=1 forbids downloads: fetch it once online, or unset '
                                   'HF_HUB_OFFLINE') from None
        raise OSError(f'{name}: cannot reach {endpoint} and the file is not in the Hugging Face cache '
                      f'({hub.constants.HF_HUB_CACHE})') from None
    except errors.EntryNotFoundError:
        raise MissingFileError(f'{name}: {repo_id} has no file {filename!r}') from None
    except errors.HfHubHTTPError as e:
        raise OSError(f'{name}: {endpoint} answered {str(e).strip().splitlines()[0]}') from None
