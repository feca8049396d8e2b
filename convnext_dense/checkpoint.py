"""Loading ConvNeXt checkpoints of every common layout into ``convnext_dense.ConvNeXt``, safely and with a report.

Layouts (facts: ``shared/reference/checkpoints.md``): the official ConvNeXt files (Liu et al., CVPR 2022, and
ConvNeXt V2, Woo et al., CVPR 2023; https://github.com/facebookresearch/ConvNeXt and ConvNeXt-V2), including the
official dense fine-tuned mmdet 2.x / mmseg 0.x whole models; mmpretrain; timm (``.pth``, ``.bin``,
``.safetensors``); HF transformers ConvNext / ConvNextV2. Any of them may be wrapped by ``module.`` (DDP) or
``_orig_mod.`` (torch.compile). The layout is detected from the keys; ``KEY_TABLE`` is the one place that says how
each layout names each part. Our parameter names equal the official ones.

Files are read with ``torch.load(weights_only=True)`` and an allow-list of the few harmless globals that mmengine's
own runner checkpoints contain, or with safetensors, so code stored in a pickle never runs.
``install_safe_checkpoint_loader`` routes mmengine's local-file loading (``load_from``, ``resume``, test tools)
through the same reader and maps ConvNeXt ``backbone.*`` keys of whole detector / segmentor files to our names.
"""
import os
import pickle
import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
from safetensors import SafetensorError
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors
from torch import Tensor

from .backbone import ARCH_SETTINGS, ConvNeXt

PathLike = Union[str, os.PathLike]
StateDict = Dict[str, Tensor]

# Layout names, in the column order of KEY_TABLE. 'official' is also ours. On a tie in detection (a file whose
# keys every layout reads the same way) the earlier layout wins.
LAYOUTS = ('official', 'mmpretrain', 'timm', 'hf')

# One row per backbone part: its name in the official layout (= ours), mmpretrain, timm and HF transformers; None
# where the layout has no such part. {i} is a stage, {j} a block; a name stands for the part's parameter itself or
# for its ``.weight`` / ``.bias``. Stage 0 has no downsample layer in any layout: the stem takes its place.
KEY_TABLE: Tuple[Tuple[Optional[str], ...], ...] = (
    # official / ours            mmpretrain                          timm                           HF transformers
    ('downsample_layers.0.0', 'downsample_layers.0.0', 'stem.0', 'embeddings.patch_embeddings'),
    ('downsample_layers.0.1', 'downsample_layers.0.1', 'stem.1', 'embeddings.layernorm'),
    ('downsample_layers.{i}.0', 'downsample_layers.{i}.0', 'stages.{i}.downsample.0',
     'encoder.stages.{i}.downsampling_layer.0'),
    ('downsample_layers.{i}.1', 'downsample_layers.{i}.1', 'stages.{i}.downsample.1',
     'encoder.stages.{i}.downsampling_layer.1'),
    ('stages.{i}.{j}.dwconv', 'stages.{i}.{j}.depthwise_conv', 'stages.{i}.blocks.{j}.conv_dw',
     'encoder.stages.{i}.layers.{j}.dwconv'),
    ('stages.{i}.{j}.norm', 'stages.{i}.{j}.norm', 'stages.{i}.blocks.{j}.norm',
     'encoder.stages.{i}.layers.{j}.layernorm'),
    ('stages.{i}.{j}.pwconv1', 'stages.{i}.{j}.pointwise_conv1', 'stages.{i}.blocks.{j}.mlp.fc1',
     'encoder.stages.{i}.layers.{j}.pwconv1'),
    ('stages.{i}.{j}.grn.gamma', 'stages.{i}.{j}.grn.gamma', 'stages.{i}.blocks.{j}.mlp.grn.weight',
     'encoder.stages.{i}.layers.{j}.grn.weight'),
    ('stages.{i}.{j}.grn.beta', 'stages.{i}.{j}.grn.beta', 'stages.{i}.blocks.{j}.mlp.grn.bias',
     'encoder.stages.{i}.layers.{j}.grn.bias'),
    ('stages.{i}.{j}.pwconv2', 'stages.{i}.{j}.pointwise_conv2', 'stages.{i}.blocks.{j}.mlp.fc2',
     'encoder.stages.{i}.layers.{j}.pwconv2'),
    ('stages.{i}.{j}.gamma', 'stages.{i}.{j}.gamma', 'stages.{i}.blocks.{j}.gamma',
     'encoder.stages.{i}.layers.{j}.layer_scale_parameter'),
    ('norm{i}', 'norm{i}', None, None),  # dense output norms: official fine-tuned files, mmpretrain out_indices
)

# The classification parts of each layout (final LayerNorm on pooled features, head), never loaded. mmpretrain's
# converter stores the final LayerNorm as ``norm3``, which therefore loads as the stage-3 output norm.
CLASSIFIER_KEYS: Dict[str, Tuple[str, ...]] = {
    'official': ('norm', 'head'),
    'mmpretrain': ('head',),
    'timm': ('head',),
    'hf': ('layernorm', 'classifier'),
}

WRAPPER_PREFIX = re.compile(r'^((module|_orig_mod)\.)+')  # DDP and torch.compile wrappers, possibly nested
TIMM_FLAT_NAME = re.compile(r'^(stem|stages)_(\d+)\.')  # timm features_only models flatten stem.0 to stem_0
AUTO_PREFIXES = ('backbone.', 'convnext.', 'convnextv2.')  # mm whole models, HF *ForImageClassification
CONTAINERS = ('state_dict', 'model', 'model_ema')  # mmengine / mmpretrain, official (EMA only if no 'model')
WHOLE_MODEL_PREFIX = 'backbone.'

OFFICIAL_URL = 'https://dl.fbaipublicfiles.com/convnext/'
# Official ImageNet files (ConvNeXt README and the dense code's configs), so a missing one can say where it lives.
OFFICIAL_CHECKPOINTS: Tuple[str, ...] = (
    'convnext_tiny_1k_224.pth', 'convnext_small_1k_224.pth', 'convnext_base_1k_224.pth',
    'convnext_tiny_1k_224_ema.pth', 'convnext_small_1k_224_ema.pth', 'convnext_base_1k_224_ema.pth',
    'convnext_large_1k_224_ema.pth',
    'convnext_tiny_22k_224.pth', 'convnext_small_22k_224.pth', 'convnext_base_22k_224.pth',
    'convnext_large_22k_224.pth', 'convnext_xlarge_22k_224.pth',
)

ABRIDGE = 6  # keys shown per list in the report


def _compile_layouts() -> Dict[str, List[Tuple['re.Pattern[str]', str]]]:
    """Per layout, (regex of its name, our name as a format string) for each row of ``KEY_TABLE``."""
    rules: Dict[str, List[Tuple['re.Pattern[str]', str]]] = {layout: [] for layout in LAYOUTS}
    for row in KEY_TABLE:
        ours = row[0]
        for layout, name in zip(LAYOUTS, row):
            if name is None:
                continue
            pattern = re.escape(name).replace(r'\{i\}', r'(?P<i>\d+)').replace(r'\{j\}', r'(?P<j>\d+)')
            rules[layout].append((re.compile(f'^{pattern}(?P<leaf>\\.weight|\\.bias)?$'), ours))
    return rules


_LAYOUT_RULES = _compile_layouts()


# ----------------------------------------------------------------------------------------------------------------
# Reading files safely
# ----------------------------------------------------------------------------------------------------------------

_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')  # HistoryBuffer's default statistics methods


def _history_buffer_method(owner: type, name: str) -> Callable:
    """``getattr`` as the unpickler may call it: only for the statistics methods a ``HistoryBuffer`` pickles.

    A saved ``HistoryBuffer`` keeps its statistics methods, which pickle as ``getattr(HistoryBuffer, 'mean')``. A
    general ``getattr`` would hand a crafted file any attribute of any allowed object, so only these are served.
    """
    if owner is not HistoryBuffer or not (name in _HISTORY_BUFFER_STATISTICS
                                          or name in HistoryBuffer._statistics_methods):
        raise pickle.UnpicklingError(f'getattr({owner!r}, {name!r}) is not allowed; only HistoryBuffer statistics '
                                     f'methods {_HISTORY_BUFFER_STATISTICS} are')
    return getattr(owner, name)


def _safe_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The globals an mmengine runner checkpoint needs beyond plain tensors (found by saving one with torch 2.13).

    The message hub holds ``HistoryBuffer`` objects (numpy arrays inside) and numpy scalars. numpy 2 pickles its
    reconstructors under ``numpy._core``, numpy 1 under ``numpy.core``; both names map to the same functions.
    """
    reconstruct = np.zeros(1).__reduce__()[0]  # the array reconstructor, whatever module numpy keeps it in
    scalar = np.float64(0).__reduce__()[0]
    allowed: List[Union[Callable, Tuple[Callable, str]]] = [
        HistoryBuffer, (_history_buffer_method, 'builtins.getattr'), np.ndarray, np.dtype]
    for package in ('numpy.core', 'numpy._core'):
        allowed += [(reconstruct, f'{package}.multiarray._reconstruct'), (scalar, f'{package}.multiarray.scalar')]
    # Unpickling a dtype builds an instance of its class: float64 and int64 in HistoryBuffer and runtime info;
    # float32 and int32 where numpy's defaults or logged values differ by platform.
    allowed += [type(np.dtype(name)) for name in ('float64', 'int64', 'float32', 'int32')]
    return allowed


# torch >= 2.6 takes (global, name) pairs, needed for the numpy aliases and the restricted getattr; with older torch,
# files read with weights_only=True may hold plain tensors and containers only (no mmengine message hub).
ALLOW_LIST_SUPPORTED = torch.__version__ >= '2.6'


def _allow_listed() -> ContextManager:
    return torch.serialization.safe_globals(_safe_globals()) if ALLOW_LIST_SUPPORTED else nullcontext()


def _missing_file_message(path: str) -> str:
    name = os.path.basename(path)
    message = f'checkpoint file {path!r} does not exist'
    if name in OFFICIAL_CHECKPOINTS:
        url = OFFICIAL_URL + name
        message += (f'; it is an official ConvNeXt ImageNet checkpoint: download it from {url}, e.g. '
                    f'`mkdir -p {os.path.dirname(path) or "."} && wget {url} -O {path}`')
    return message


def read_checkpoint(path: PathLike, map_location: Union[str, torch.device, None] = 'cpu') -> Any:
    """Read a checkpoint file without running code stored in it.

    ``.safetensors`` files are read with safetensors (onto the CPU); anything else with
    ``torch.load(weights_only=True)`` plus the allow-list of ``_safe_globals``.

    Args:
        path: Local file path.
        map_location: Passed to ``torch.load``. Default: 'cpu'.

    Returns:
        The object stored in the file (a state dict, or a dict holding one).

    Raises:
        FileNotFoundError: ``path`` does not exist (for an official file name, the message says where to get it).
        ValueError: ``path`` is a URL, or the file is truncated, corrupt, not a checkpoint, or needs unpickling of
            anything beyond tensors, containers and the allow-listed globals.
    """
    path = os.path.expanduser(os.fspath(path))
    if '://' in path:
        raise ValueError(f'checkpoint {path!r} is a URL; convnext_dense reads local files only: download it and '
                         'pass the local path')
    if not os.path.isfile(path):
        raise FileNotFoundError(_missing_file_message(path))
    if path.endswith('.safetensors'):
        try:
            return load_safetensors(path, device='cpu')
        except SafetensorError as e:
            raise ValueError(f'cannot read safetensors file {path!r}: {e} (truncated or not a safetensors '
                             'file)') from e
    try:
        with _allow_listed():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message wraps the refused global in advice to allow-list it; name only the global.
        refused = re.search(r'GLOBAL ([\w.]+)', str(e))
        reason = f'unpickling it would call {refused.group(1)}' if refused else str(e).splitlines()[0].strip()
        upgrade = '' if ALLOW_LIST_SUPPORTED else '; torch >= 2.6 also reads mmengine runner checkpoints safely'
        raise ValueError(f'refusing to read {path!r}: it holds more than weights ({reason}). convnext_dense reads '
                         'checkpoints with torch.load(weights_only=True), so code in a file never runs; if you '
                         f'trust the file, re-save its state dict (tensors only) or convert it to safetensors{upgrade}'
                         ) from e
    except (RuntimeError, OSError, EOFError, KeyError, ValueError, IndexError) as e:
        raise ValueError(f'cannot read checkpoint {path!r}: {type(e).__name__}: {e} (the file is truncated, '
                         'corrupt or not a PyTorch checkpoint)') from e


# ----------------------------------------------------------------------------------------------------------------
# Mapping keys
# ----------------------------------------------------------------------------------------------------------------

def _unwrap(checkpoint: object, path: str) -> Tuple[StateDict, Optional[str]]:
    """The tensors of the state dict inside ``checkpoint`` and the container key they were found under."""
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'checkpoint {path!r} holds a {type(checkpoint).__name__}, not a state dict or a dict '
                         f'with one under {CONTAINERS}')
    container = next((key for key in CONTAINERS if isinstance(checkpoint.get(key), Mapping)), None)
    state_dict = checkpoint[container] if container else checkpoint
    return {k: v for k, v in state_dict.items() if isinstance(v, Tensor)}, container


def _abridge(keys: Sequence[str]) -> str:
    shown = ', '.join(keys[:ABRIDGE])
    return shown + (f', ... ({len(keys) - ABRIDGE} more)' if len(keys) > ABRIDGE else '')


def _to_ours(key: str, layout: str) -> Optional[str]:
    """Our name for ``key`` of ``layout`` (prefixes stripped), or None if the layout has no such backbone part."""
    for regex, ours in _LAYOUT_RULES[layout]:
        match = regex.match(key)
        if match:
            return ours.format(**match.groupdict()) + (match.group('leaf') or '')
    return None


def _is_classifier(key: str, layout: str) -> bool:
    return any(key.startswith(part + '.') for part in CLASSIFIER_KEYS[layout])


def _canonical(ours: str, tensor: Tensor) -> Tensor:
    """Our shape for a tensor whose layout stores it differently (GRN (1,1,1,C), timm conv_mlp (out,in,1,1))."""
    if ours.endswith(('.grn.gamma', '.grn.beta')) and tensor.dim() == 4:
        return tensor.reshape(-1)  # (1, 1, 1, C) -> (C,)
    if re.search(r'\.pwconv[12]\.weight$', ours) and tensor.dim() == 4 and tensor.shape[2:] == (1, 1):
        return tensor.flatten(1)  # (out, in, 1, 1) -> (out, in)
    return tensor


def detect_layout(keys: Sequence[str]) -> Optional[str]:
    """The layout of ``KEY_TABLE`` that names the most of ``keys`` (prefixes already stripped), or None if none."""
    counts = {layout: sum(_to_ours(k, layout) is not None for k in keys) for layout in LAYOUTS}
    best = max(LAYOUTS, key=lambda layout: counts[layout])  # max keeps the first of equals: LAYOUTS order
    return best if counts[best] else None


@dataclass
class MappedCheckpoint:
    """A file's backbone tensors under our names, and what else it held.

    Attributes:
        path: The file.
        layout: Detected layout (one of ``LAYOUTS``), or None if no key is a ConvNeXt backbone part.
        container: Key of the dict the state dict was found under ('state_dict', 'model', 'model_ema'), or None.
        prefix: The prefix stripped from the backbone keys ('' for none).
        state_dict: Backbone tensors under our names, in our shapes.
        classifier: File keys of the classification parts (final norm, head), skipped.
        unexpected: File keys under the prefix that are no backbone part of the layout.
        outside: File keys outside the prefix (a whole model's neck and heads), left alone.
    """

    path: str
    layout: Optional[str]
    container: Optional[str]
    prefix: str
    state_dict: StateDict
    classifier: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    outside: Dict[str, Tensor] = field(default_factory=dict)


def _pick_prefix(keys: Sequence[str], prefix: Optional[str], path: str) -> str:
    if prefix is None:
        return next((p for p in AUTO_PREFIXES if any(k.startswith(p) for k in keys)), '')
    if prefix and not prefix.endswith('.'):
        prefix += '.'
    if prefix and not any(k.startswith(prefix) for k in keys):
        found = sorted({k.split('.', 1)[0] + '.' for k in keys})
        raise ValueError(f'prefix {prefix!r} matches no key of {path!r}; its top-level prefixes are '
                         f'{_abridge(found)}; pass one of them, or prefix=None to detect it')
    return prefix


def map_state_dict(checkpoint: Mapping, path: PathLike = '<memory>',
                   prefix: Optional[str] = None) -> MappedCheckpoint:
    """Find the backbone in a checkpoint of any known layout and rename and reshape its tensors to ours.

    Args:
        checkpoint: What ``read_checkpoint`` returned.
        path: The file it came from, for messages. Default: '<memory>'.
        prefix: Prefix of the backbone keys (e.g. 'backbone.' in a whole detector); '' for none; None detects
            'backbone.', 'convnext.' or 'convnextv2.'. ``module.`` / ``_orig_mod.`` wrappers are always stripped
            first. Default: None.

    Returns:
        The mapped backbone tensors and the rest of the file, sorted into classifier, unexpected and outside keys.

    Raises:
        ValueError: ``checkpoint`` holds no state dict, or ``prefix`` matches no key.
    """
    path = os.fspath(path)
    tensors, container = _unwrap(checkpoint, path)
    tensors = {WRAPPER_PREFIX.sub('', k): v for k, v in tensors.items()}
    prefix = _pick_prefix(list(tensors), prefix, path)
    inside = {TIMM_FLAT_NAME.sub(r'\1.\2.', k[len(prefix):]): v for k, v in tensors.items() if k.startswith(prefix)}
    layout = detect_layout(list(inside))
    mapped = MappedCheckpoint(path, layout, container, prefix, {})
    for key, tensor in tensors.items():
        if not key.startswith(prefix) and layout and _is_classifier(key, layout):
            mapped.classifier.append(key)  # a head outside the prefix (mmpretrain head.fc, HF classifier)
        elif not key.startswith(prefix):
            mapped.outside[key] = tensor
    for key, tensor in inside.items():
        ours = _to_ours(key, layout) if layout else None
        if ours is not None:
            mapped.state_dict[ours] = _canonical(ours, tensor)
        elif layout and _is_classifier(key, layout):
            mapped.classifier.append(prefix + key)
        else:
            mapped.unexpected.append(prefix + key)
    return mapped


# ----------------------------------------------------------------------------------------------------------------
# Architecture inference (for messages and the converter)
# ----------------------------------------------------------------------------------------------------------------

def infer_arch(state_dict: Mapping[str, Tensor]) -> Dict[str, Tuple[int, ...]]:
    """Depths and channels of the stages stored in a state dict with our names (stages 0..n-1, n >= 1).

    Raises:
        ValueError: The state dict has no stem or its stages are not 0..n-1.
    """
    channels: Dict[int, int] = {}
    depths: Dict[int, int] = {}
    for key, tensor in state_dict.items():
        block = re.match(r'stages\.(\d+)\.(\d+)\.dwconv\.weight$', key)
        if block:
            i, j = int(block.group(1)), int(block.group(2))
            channels[i], depths[i] = tensor.shape[0], max(depths.get(i, 0), j + 1)
    has_stem = 'downsample_layers.0.0.weight' in state_dict
    if not has_stem or not depths or sorted(depths) != list(range(len(depths))):
        raise ValueError(f'cannot infer the arch: the stem and the blocks of stages 0..n-1 are needed, got blocks of '
                         f'stages {sorted(depths)} and {"a" if has_stem else "no"} stem')
    return dict(depths=tuple(depths[i] for i in sorted(depths)), channels=tuple(channels[i] for i in sorted(depths)))


def describe_arch(depths: Sequence[int], channels: Sequence[int]) -> str:
    """Name the ``ARCH_SETTINGS`` entries whose first stages have these channels (and depths, where complete)."""
    n = len(channels)
    names = [name for name, arch in ARCH_SETTINGS.items() if tuple(arch['channels'][:n]) == tuple(channels)]
    exact = [name for name in names if tuple(ARCH_SETTINGS[name]['depths'][:len(depths)]) == tuple(depths)]
    names = exact or names
    shape = f'depths {tuple(depths)}, channels {tuple(channels)}'
    return f'{" or ".join(repr(n) for n in names)} ({shape})' if names else f'no arch in ARCH_SETTINGS ({shape})'


def _likely_arch(state_dict: Mapping[str, Tensor]) -> str:
    try:
        return 'ConvNeXt ' + describe_arch(**infer_arch(state_dict))
    except ValueError:
        return 'an arch that cannot be inferred (no stem or no blocks)'


# ----------------------------------------------------------------------------------------------------------------
# Loading into a backbone
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class LoadReport:
    """What a load did; ``summary()`` is the text that is logged.

    Attributes:
        path: The file.
        layout: Detected layout (one of ``LAYOUTS``).
        container: Key the state dict was found under, or None.
        prefix: Prefix stripped from the backbone keys ('' for none).
        loaded: Our names of the tensors loaded.
        expected: Number of tensors in the backbone's state dict.
        missing: Backbone tensors (other than output norms) the file lacks; they keep their init.
        unexpected: File keys under the prefix that are no backbone part of the layout.
        not_built: Mapped tensors of parts this backbone does not build (stages after max(out_indices), output norms
            of stages not returned).
        classifier: File keys of the classification parts, skipped.
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

    def summary(self) -> str:
        """The multi-line report logged after loading."""
        source = f'{self.layout} layout' + (f", '{self.container}' container" if self.container else '')
        source += f", prefix '{self.prefix}'" if self.prefix else ''
        lines = [f'convnext_dense: loaded {len(self.loaded)}/{self.expected} backbone tensors from {self.path} '
                 f'({source})']
        for title, keys in (('missing, kept init', self.missing), ('unexpected, ignored', self.unexpected),
                            ('not built in this backbone, ignored', self.not_built),
                            ('classifier, skipped', self.classifier)):
            if keys:
                lines.append(f'  {title} ({len(keys)}): {_abridge(keys)}')
        if self.outside:
            lines.append(f"  outside prefix '{self.prefix}', left to the rest of the model: {self.outside} keys")
        from_file = [name for name, source in self.norms.items() if source == 'file']
        kept = [name for name, source in self.norms.items() if source == 'init']
        lines.append(f'  output norms from the file: {", ".join(from_file) or "none"}; kept at init (weight 1, '
                     f'bias 0): {", ".join(kept) or "none"}')
        return '\n'.join(lines)


def _norm_names(model: ConvNeXt) -> List[str]:
    return [f'norm{i}' for i in model.out_indices]


def load_mapped(model: ConvNeXt, mapped: MappedCheckpoint) -> LoadReport:
    """Copy a mapped checkpoint's tensors into ``model`` and log the report.

    Raises:
        ValueError: A tensor's shape differs from the model's (naming key, both shapes and the file's likely arch),
            or no backbone tensor loads.
    """
    own = model.state_dict()
    to_load = {k: v for k, v in mapped.state_dict.items() if k in own}
    if not to_load:
        raise ValueError(f'no ConvNeXt backbone tensor of {mapped.path!r} fits this backbone (layout '
                         f'{mapped.layout or "not recognised"}, prefix {mapped.prefix!r}); its first keys: '
                         f'{_abridge(mapped.unexpected or list(mapped.state_dict) or list(mapped.outside))}. Known '
                         f'layouts: {", ".join(LAYOUTS)}; a backbone inside a whole model needs its prefix')
    for key, tensor in to_load.items():
        if tensor.shape != own[key].shape:
            raise ValueError(
                f'{mapped.path!r}: {key} has shape {tuple(tensor.shape)} in the file but {tuple(own[key].shape)} in '
                f'the model; the file looks like {_likely_arch(mapped.state_dict)}, the model is ConvNeXt '
                f'{describe_arch(model.arch_depths, model.arch_channels)}: set arch to match the file')
    model.load_state_dict(to_load, strict=False)
    norms = _norm_names(model)
    report = LoadReport(
        path=mapped.path, layout=mapped.layout or '', container=mapped.container, prefix=mapped.prefix,
        loaded=list(to_load), expected=len(own),
        missing=[k for k in own if k not in to_load and k.split('.', 1)[0] not in norms],
        unexpected=mapped.unexpected, not_built=[k for k in mapped.state_dict if k not in own],
        classifier=mapped.classifier, outside=len(mapped.outside),
        norms={name: 'file' if f'{name}.weight' in to_load else 'init' for name in norms})
    print_log(report.summary(), logger='current')
    return report


def load_backbone_checkpoint(model: ConvNeXt,
                             path: PathLike,
                             prefix: Optional[str] = None,
                             map_location: Union[str, torch.device, None] = 'cpu') -> LoadReport:
    """Load a checkpoint of any known layout into a ConvNeXt backbone, safely, and log one report.

    This is what ``init_cfg=dict(type='Pretrained', checkpoint=PATH, prefix=...)`` runs. Missing tensors and
    tensors of parts the backbone does not build are reported, not fatal.

    Args:
        model: The backbone.
        path: Local checkpoint file (``.pth``, ``.bin``, ``.safetensors``, ...).
        prefix: Prefix of the backbone keys in the file; '' for none; None detects it. Default: None.
        map_location: Passed to ``torch.load``. Default: 'cpu'.

    Returns:
        The report that was logged.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is unreadable, truncated or unsafe; the prefix matches nothing; a shape differs; or
            no backbone tensor loads.
    """
    mapped = map_state_dict(read_checkpoint(path, map_location), path, prefix)
    return load_mapped(model, mapped)


# ----------------------------------------------------------------------------------------------------------------
# Whole detector / segmentor checkpoints through mmengine
# ----------------------------------------------------------------------------------------------------------------

def map_whole_model(state_dict: Mapping[str, Tensor]) -> Tuple[Dict[str, Tensor], Optional[str]]:
    """Rename the ``backbone.*`` keys of a whole model to ours if they are a ConvNeXt of a known layout.

    Every ``backbone.`` key must be a backbone part of one layout; anything else (another backbone, or keys no
    layout knows) leaves the state dict as it is, so non-ConvNeXt models are never touched.

    Returns:
        The state dict (renamed or as given, other keys unchanged, order kept) and the layout it was in, or None
        if it was left alone.
    """
    inside = [k for k in state_dict if k.startswith(WHOLE_MODEL_PREFIX)]
    flat = {k: TIMM_FLAT_NAME.sub(r'\1.\2.', k[len(WHOLE_MODEL_PREFIX):]) for k in inside}
    layout = detect_layout(list(flat.values()))
    if layout is None or any(_to_ours(name, layout) is None for name in flat.values()):
        return dict(state_dict), None
    renamed = {}
    for key, tensor in state_dict.items():
        if key in flat:
            ours = _to_ours(flat[key], layout)
            renamed[WHOLE_MODEL_PREFIX + ours] = _canonical(ours, tensor)
        else:
            renamed[key] = tensor
    return renamed, layout


def load_from_local_safe(filename: str, map_location: Union[str, torch.device, None] = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local files: ``read_checkpoint``, then ``map_whole_model``.

    The rest of the checkpoint (meta, optimizer, message hub) is returned unchanged for mmengine's runner.
    """
    checkpoint = read_checkpoint(filename, map_location)
    if not isinstance(checkpoint, Mapping):
        return checkpoint  # mmengine reports non-dict checkpoints itself
    holder = 'state_dict' if isinstance(checkpoint.get('state_dict'), Mapping) else None
    state_dict, layout = map_whole_model(checkpoint[holder] if holder else checkpoint)
    if layout is None:
        return checkpoint  # not a ConvNeXt backbone of a known layout
    if layout != 'official':  # official names are ours: only GRN shapes can have changed
        print_log(f'convnext_dense: renamed the backbone.* keys of {filename} from the {layout} layout to '
                  'convnext_dense.ConvNeXt names', logger='current')
    return {**checkpoint, holder: state_dict} if holder else state_dict


def install_safe_checkpoint_loader() -> None:
    """Make mmengine read local checkpoints through ``load_from_local_safe`` (replaces its '' prefix scheme).

    This covers the runner's ``load_from`` and ``resume`` and every tool that loads a local path through
    ``mmengine.runner.load_checkpoint``; it fixes resuming under torch >= 2.6 (whose ``weights_only`` default
    rejects mmengine's saved message hub) and reads files safely under older torch too. Idempotent.
    """
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safe, force=True)


# ----------------------------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------------------------

def convert_checkpoint(src: PathLike, dst: PathLike, prefix: Optional[str] = None,
                       whole_model: bool = False) -> LoadReport:
    """Write a clean convnext_dense checkpoint from a file of any known layout.

    The file is checked by loading it into a backbone of the arch inferred from its tensors; the report of that
    load is logged and returned.

    Args:
        src: The source file.
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
        raise ValueError(f'refusing to overwrite the source {src!r}: pass a different destination')
    if whole_model and dst.endswith('.safetensors'):
        raise ValueError(f'destination {dst!r}: a whole-model checkpoint is written with torch.save; use a .pth '
                         'name, or write the backbone only')
    mapped = map_state_dict(read_checkpoint(src), src, prefix)
    if mapped.layout is None:
        raise ValueError(f'no ConvNeXt backbone found in {src!r} (prefix {mapped.prefix!r}); first keys: '
                         f'{_abridge(mapped.unexpected or list(mapped.outside))}')
    arch = infer_arch(mapped.state_dict)
    model = ConvNeXt(arch=arch, in_channels=mapped.state_dict['downsample_layers.0.0.weight'].shape[1],
                     out_indices=tuple(range(len(arch['depths']))),
                     use_grn=any('.grn.' in k for k in mapped.state_dict),
                     layer_scale_init_value=1e-6 if any(k.endswith('.gamma') and '.grn.' not in k
                                                        for k in mapped.state_dict) else 0.0)
    report = load_mapped(model, mapped)
    state_dict = {k: v.contiguous() for k, v in mapped.state_dict.items()}
    if dst.endswith('.safetensors'):
        save_safetensors(state_dict, dst)
    elif whole_model:
        meta = dict(converted_from=os.path.basename(src), layout=mapped.layout)
        torch.save(dict(state_dict={**{WHOLE_MODEL_PREFIX + k: v for k, v in state_dict.items()}, **mapped.outside},
                        meta=meta), dst)
    else:
        torch.save(state_dict, dst)
    return report
