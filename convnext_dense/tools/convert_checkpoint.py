"""Conversion of a ConvNeXt checkpoint of any known layout to a clean convnext_dense file
(``tools/convert_checkpoint.py``)."""
import os
from typing import Optional, Union

import torch
from safetensors.torch import save_file as save_safetensors

from ..checkpoint.layouts import WHOLE_MODEL_PREFIX
from ..checkpoint.loading import LoadReport, abridge, load_mapped, map_state_dict, read_convnext_checkpoint
from ..models.backbone import ConvNeXt
from ..specs.arch import infer_arch
from ..utils.errors import CheckpointError


def convert_checkpoint(src: Union[str, os.PathLike], dst: Union[str, os.PathLike], prefix: Optional[str] = None,
                       whole_model: bool = False) -> LoadReport:
    """Write a clean convnext_dense checkpoint from a file of any known layout.

    The file is checked by loading it into a backbone of the arch inferred from its tensors; the report of that
    load is logged and returned.

    Args:
        src: The source file, or its http(s) URL (read from the download cache).
        dst: The file to write: a backbone-only state dict (``.safetensors`` if it ends so, else ``torch.save``), or
            with ``whole_model`` an mmdet / mmseg checkpoint ``{'state_dict': {'backbone.*': ..., <the source's
            other non-classifier keys, e.g. neck, heads>}, 'meta': ...}``.
        prefix: Prefix of the backbone keys in ``src``, as in ``load_backbone_checkpoint``. Default: None.
        whole_model: Write the whole-model form. Default: False.

    Raises:
        ValueError: ``dst`` is ``src``; whole-model output to ``.safetensors``; or any loading error.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    same = os.path.realpath(src) == os.path.realpath(dst) or (
        os.path.isfile(src) and os.path.exists(dst) and os.path.samefile(src, dst))
    if same:
        raise CheckpointError(f'refusing to overwrite the source {src!r}: pass a different destination')
    if whole_model and dst.endswith('.safetensors'):
        raise CheckpointError(f'destination {dst!r}: a whole-model checkpoint is written with torch.save; use a .pth '
                              'name, or write the backbone only')
    mapped = map_state_dict(read_convnext_checkpoint(src), src, prefix)
    if mapped.layout is None:
        raise CheckpointError(f'no ConvNeXt backbone found in {src!r} (prefix {mapped.prefix!r}); first keys: '
                              f'{abridge(mapped.unexpected or list(mapped.outside))}')
    try:
        arch = infer_arch(mapped.state_dict)
        model = ConvNeXt(arch=arch, in_channels=mapped.state_dict['downsample_layers.0.0.weight'].shape[1],
                         out_indices=tuple(range(len(arch['depths']))),
                         use_grn=any('.grn.' in k for k in mapped.state_dict),
                         layer_scale_init_value=1e-6 if any(k.endswith('.gamma') and '.grn.' not in k
                                                            for k in mapped.state_dict) else 0.0)
    except (ValueError, IndexError, RuntimeError) as e:  # stems and blocks of impossible shapes
        raise CheckpointError(f'{src!r}: {e}') from None
    report = load_mapped(model, mapped)
    state_dict = {k: v.contiguous() for k, v in mapped.state_dict.items()}
    if dst.endswith('.safetensors'):
        save_safetensors(state_dict, dst)
        os.chmod(dst, 0o666 & ~_umask())  # safetensors creates its file 0600; torch.save's files follow the umask
    elif whole_model:
        meta = dict(converted_from=os.path.basename(src), layout=mapped.layout.name)
        torch.save(dict(state_dict={**{WHOLE_MODEL_PREFIX + k: v for k, v in state_dict.items()}, **mapped.outside},
                        meta=meta), dst)
    else:
        torch.save(state_dict, dst)
    return report


def _umask() -> int:
    """The process's file-creation mask (reading it means setting it: set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
