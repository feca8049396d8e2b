"""Loading a ConvNeXt checkpoint of any layout (``layouts.LAYOUTS``) into the backbone, with one logged report.

The layout is detected from the keys; the file is read safely (``reader.read_checkpoint``). Errors name the file:
a shape mismatch also names the key, both shapes and the arch the file holds; a file of which no backbone tensor
loads is an error, not a warning.
"""
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..utils.errors import CheckpointError, MissingFileError
from ..utils.logging import print_log
from .checks import check_keys, check_one_tower, check_tensor_fits
from .layouts import (
    AUTO_PREFIXES,
    CONTAINERS,
    DINOV3_CHECKPOINTS,
    DINOV3_REQUEST,
    LAYOUT_NAMES,
    OFFICIAL_CHECKPOINTS,
    WHOLE_MODEL_PREFIX,
    WRAPPER_PREFIX,
    Layout,
    detect_layout,
)
from .reader import read_checkpoint

StateDict = Dict[str, Tensor]
ABRIDGE = 6  # keys shown per list in the report


def read_convnext_checkpoint(path: Union[str, os.PathLike], map_location: Union[str, torch.device, None] = 'cpu'
                             ) -> Any:
    """``read_checkpoint``; a missing published file's error says where to get it (its URL in
    ``OFFICIAL_CHECKPOINTS``; for DINOv3's gated files, timm's ungated copy in ``DINOV3_CHECKPOINTS``)."""
    try:
        return read_checkpoint(path, map_location)
    except FileNotFoundError as e:
        path = os.fspath(path)
        name = os.path.basename(path)
        if '://' in path or name not in {**OFFICIAL_CHECKPOINTS, **DINOV3_CHECKPOINTS}:  # a URL's error names it
            raise
        if name in DINOV3_CHECKPOINTS:
            raise MissingFileError(f'{e}; it is a DINOv3 file, gated: request it from Meta ({DINOV3_REQUEST}), or '
                                   f'name timm\'s ungated copy of the same weights, CONVNEXT_PRETRAINED='
                                   f'{DINOV3_CHECKPOINTS[name]} (needs pip install "convnext_dense[hf]")') from None
        url = OFFICIAL_CHECKPOINTS[name]
        raise MissingFileError(f'{e}; it is a published ConvNeXt ImageNet checkpoint: download it from {url}, e.g. '
                               f'`mkdir -p {os.path.dirname(path) or "."} && wget {url} -O {path}`, or name the URL '
                               'as the checkpoint (downloaded once into the cache)') from None


def abridge(keys: Sequence[str]) -> str:
    """The first few of ``keys``, and how many more there are."""
    shown = ', '.join(keys[:ABRIDGE])
    return shown + (f', ... ({len(keys) - ABRIDGE} more)' if len(keys) > ABRIDGE else '')


def state_dict_tensors(checkpoint: object, path: str) -> Tuple[StateDict, Optional[str]]:
    """The tensors of the state dict inside ``checkpoint`` and the container key they were found under."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'checkpoint {path!r} holds a {type(checkpoint).__name__}, not a state dict or a dict '
                              f'with one under {CONTAINERS}')
    container = next((key for key in CONTAINERS if isinstance(checkpoint.get(key), Mapping)), None)
    state_dict = checkpoint[container] if container else checkpoint
    check_keys(state_dict, path)
    return {k: v for k, v in state_dict.items() if isinstance(v, Tensor)}, container


@dataclass
class MappedCheckpoint:
    """A file's backbone tensors under our names, and what else it held.

    Attributes:
        path: The file.
        layout: The detected layout, or None if no key is a ConvNeXt backbone part.
        container: Key of the dict the state dict was found under ('state_dict', 'model', 'model_ema'), or None.
        prefix: The prefix stripped from the backbone keys ('' for none).
        state_dict: Backbone tensors under our names, in our shapes.
        classifier: File keys of the classification parts (final norm, head), skipped.
        unexpected: File keys under the prefix that are no backbone part of the layout.
        outside: File keys outside the prefix (a whole model's neck and heads), left alone.
    """

    path: str
    layout: Optional[Layout]
    container: Optional[str]
    prefix: str
    state_dict: StateDict
    classifier: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    outside: Dict[str, Tensor] = field(default_factory=dict)


def pick_prefix(keys: Sequence[str], prefix: Optional[str], path: str, auto: Sequence[str] = AUTO_PREFIXES) -> str:
    """``prefix`` ending in '.' (a ValueError if no key has it); for None the first of ``auto`` that keys have."""
    if prefix is None:
        return next((p for p in auto if any(k.startswith(p) for k in keys)), '')
    prefix += '.' if prefix and not prefix.endswith('.') else ''
    if prefix and not any(k.startswith(prefix) for k in keys):
        found = sorted({k.split('.', 1)[0] + '.' for k in keys})
        raise CheckpointError(f'prefix {prefix!r} matches no key of {path!r}; its top-level prefixes are '
                              f'{abridge(found)}; pass one of them, or prefix=None to detect it')
    return prefix


def map_state_dict(checkpoint: Mapping, path: Union[str, os.PathLike] = '<memory>',
                   prefix: Optional[str] = None) -> MappedCheckpoint:
    """Find the backbone in a checkpoint of any known layout and rename and reshape its tensors to ours.

    Args:
        checkpoint: What ``read_checkpoint`` returned.
        path: The file it came from, for messages. Default: '<memory>'.
        prefix: Prefix of the backbone keys (e.g. 'backbone.' in a whole detector); '' for none; None detects
            one of ``AUTO_PREFIXES``. ``module.`` / ``_orig_mod.`` wrappers are always stripped first. Default: None.

    Returns:
        The mapped backbone tensors and the rest of the file, sorted into classifier, unexpected and outside keys.

    Raises:
        ValueError: ``checkpoint`` holds no state dict, ``prefix`` matches no key, or the file (under ``prefix``,
            if given) holds two ConvNeXt towers.
    """
    path = os.fspath(path)
    tensors, container = state_dict_tensors(checkpoint, path)
    tensors = {WRAPPER_PREFIX.sub('', k): v for k, v in tensors.items()}
    detect = prefix is None
    prefix = pick_prefix(list(tensors), prefix, path)
    check_one_tower(list(tensors), ('', *AUTO_PREFIXES) if detect else (prefix,), path)
    inside = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    layout = detect_layout(list(inside), prefix)
    mapped = MappedCheckpoint(path, layout, container, prefix, {})
    for key, tensor in tensors.items():
        if not key.startswith(prefix) and layout and layout.is_classifier(key):
            mapped.classifier.append(key)  # a head outside the prefix (mmpretrain head.fc, HF classifier)
        elif not key.startswith(prefix):
            mapped.outside[key] = tensor
    for key, tensor in inside.items():
        converted = layout.convert(key, tensor) if layout else None
        if converted is not None:
            mapped.state_dict[converted[0]] = converted[1]
        elif layout and layout.is_classifier(key):
            mapped.classifier.append(prefix + key)
        else:
            mapped.unexpected.append(prefix + key)
    return mapped


@dataclass
class LoadReport:
    """What a load did; ``summary()`` is the text that is logged.

    Attributes:
        path: The file.
        layout: Name of the detected layout (one of ``LAYOUT_NAMES``).
        container: Key the state dict was found under, or None.
        prefix: Prefix stripped from the backbone keys ('' for none).
        loaded: Our names of the tensors loaded.
        expected: Number of tensors in the backbone's state dict.
        missing: Backbone tensors (other than output norms) the file lacks; they keep their init.
        unexpected: File keys under the prefix that are no backbone part of the layout.
        not_built: Mapped tensors of parts this backbone does not build (stages after max(out_indices), output norms
            of stages not returned).
        classifier: File keys of the parts that are not backbone (classifier, projections, text tower), skipped.
        classifier_parts: How many of ``classifier`` each such part holds (how the report lists them).
        outside: Number of file keys outside the prefix (a whole model's neck and heads), not loaded here.
        norms: For each output norm of the backbone, 'file' if loaded, 'init' if it kept weight 1, bias 0.
    """

    path: str
    layout: str
    container: Optional[str]
    prefix: str
    loaded: List[str]
    expected: int
    missing: List[str]
    unexpected: List[str]
    not_built: List[str]
    classifier: List[str]
    outside: int
    norms: Dict[str, str]
    classifier_parts: Dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """The multi-line report logged after loading."""
        source = f'{self.layout} layout' + (f", '{self.container}' container" if self.container else '')
        source += f", prefix '{self.prefix}'" if self.prefix else ''
        lines = [f'convnext_dense: loaded {len(self.loaded)}/{self.expected} backbone tensors from {self.path} '
                 f'({source})']
        for title, keys in (('missing, kept init', self.missing), ('unexpected, ignored', self.unexpected),
                            ('not built in this backbone, ignored', self.not_built)):
            if keys:
                lines.append(f'  {title} ({len(keys)}): {abridge(keys)}')
        if self.classifier:
            parts = ', '.join(f'{part}.* ({n})' for part, n in self.classifier_parts.items())
            # the title other tools and logs grep for; the parts name what else it was (projections, a text tower)
            lines.append(f'  not backbone (classifier head, pre-training decoder), skipped ({len(self.classifier)}): '
                         f'{parts}')
        if self.outside:
            lines.append(f"  outside prefix '{self.prefix}', left to the rest of the model: {self.outside} keys")
        from_file = [name for name, source in self.norms.items() if source == 'file']
        kept = [name for name, source in self.norms.items() if source == 'init']
        lines.append(f'  output norms from the file: {", ".join(from_file) or "none"}; kept at init (weight 1, '
                     f'bias 0): {", ".join(kept) or "none"}')
        return '\n'.join(lines)


def _count_parts(mapped: MappedCheckpoint) -> Dict[str, int]:
    """{classifier part, with the prefix where its keys have it: number of file keys} of ``mapped.classifier``."""
    counts: Dict[str, int] = {}
    for key in mapped.classifier:
        inside = mapped.prefix and key.startswith(mapped.prefix)
        part = mapped.layout.classifier_part(key[len(mapped.prefix):] if inside else key)
        name = (mapped.prefix if inside else '') + part
        counts[name] = counts.get(name, 0) + 1
    return counts


def load_mapped(model: nn.Module, mapped: MappedCheckpoint) -> LoadReport:
    """Copy a mapped checkpoint's tensors into the ConvNeXt ``model`` and log the report.

    Raises:
        ValueError: A tensor's shape differs from the model's (naming key, both shapes and the file's likely arch),
            or no backbone tensor loads.
    """
    own = model.state_dict()
    to_load = {k: v for k, v in mapped.state_dict.items() if k in own}
    if not to_load:
        layout = mapped.layout.name if mapped.layout else 'not recognised'
        raise CheckpointError(f'no ConvNeXt backbone tensor of {mapped.path!r} fits this backbone (layout {layout}, '
                              f'prefix {mapped.prefix!r}); its first keys: '
                              f'{abridge(mapped.unexpected or list(mapped.state_dict) or list(mapped.outside))}. Known '
                              f'layouts: {", ".join(LAYOUT_NAMES)}; a backbone inside a whole model needs its prefix')
    for key, tensor in to_load.items():
        check_tensor_fits(repr(mapped.path), key, tensor, own[key], mapped.state_dict, model)
    model.load_state_dict(to_load, strict=False)
    norms = [f'norm{i}' for i in model.out_indices]
    report = LoadReport(
        path=mapped.path, layout=mapped.layout.name, container=mapped.container, prefix=mapped.prefix,
        loaded=list(to_load), expected=len(own),
        missing=[k for k in own if k not in to_load and k.split('.', 1)[0] not in norms],
        unexpected=mapped.unexpected, not_built=[k for k in mapped.state_dict if k not in own],
        classifier=mapped.classifier, outside=len(mapped.outside),
        norms={name: 'file' if f'{name}.weight' in to_load else 'init' for name in norms},
        classifier_parts=_count_parts(mapped))
    print_log(report.summary(), logger='current')
    return report


def load_backbone_checkpoint(model: nn.Module,
                             path: Union[str, os.PathLike],
                             prefix: Optional[str] = None,
                             map_location: Union[str, torch.device, None] = 'cpu') -> LoadReport:
    """Load a checkpoint of any known layout into a ConvNeXt backbone, safely, and log one report.

    This is what ``init_cfg=dict(type='Pretrained', checkpoint=PATH, prefix=...)`` runs. Missing tensors and
    tensors of parts the backbone does not build are reported, not fatal.

    Args:
        model: The ``convnext_dense.ConvNeXt`` backbone.
        path: Local checkpoint file (``.pth``, ``.bin``, ``.safetensors``, ...) or its http(s) URL (cached).
        prefix: Prefix of the backbone keys in the file; '' for none; None detects it. Default: None.
        map_location: Passed to ``torch.load``. Default: 'cpu'.

    Returns:
        The report that was logged.

    Raises:
        FileNotFoundError: The file does not exist (for an official file name, the message says where to get it).
        ValueError: The file is unreadable, truncated or unsafe; the prefix matches nothing; a shape differs; or
            no backbone tensor loads.
    """
    mapped = map_state_dict(read_convnext_checkpoint(path, map_location), path, prefix)
    return load_mapped(model, mapped)


def map_whole_model(state_dict: Mapping[str, Tensor]) -> Tuple[Dict[str, Tensor], Optional[Layout]]:
    """Rename the ``backbone.*`` keys of a whole model to ours if they are a ConvNeXt of a known layout.

    Every ``backbone.`` key must be a backbone part of one layout; anything else (another backbone, or keys no
    layout knows) leaves the state dict as it is, so non-ConvNeXt models are never touched.

    Returns:
        The state dict (renamed or as given, other keys unchanged, order kept) and the layout it was in, or None
        if it was left alone.
    """
    inside = [k for k in state_dict if k.startswith(WHOLE_MODEL_PREFIX)]
    layout = detect_layout([k[len(WHOLE_MODEL_PREFIX):] for k in inside], WHOLE_MODEL_PREFIX)
    if layout is None or any(layout.to_ours(k[len(WHOLE_MODEL_PREFIX):]) is None for k in inside):
        return dict(state_dict), None
    renamed = {}
    for key, tensor in state_dict.items():
        if key.startswith(WHOLE_MODEL_PREFIX):
            ours, tensor = layout.convert(key[len(WHOLE_MODEL_PREFIX):], tensor)
            key = WHOLE_MODEL_PREFIX + ours
        renamed[key] = tensor
    return renamed, layout
