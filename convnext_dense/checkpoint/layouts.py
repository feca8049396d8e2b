"""How each common ConvNeXt checkpoint layout names and shapes the backbone's tensors: one record per layout.

Layouts: the official ConvNeXt files (Liu et al., CVPR 2022, and ConvNeXt V2, Woo et al., CVPR 2023;
https://github.com/facebookresearch/ConvNeXt and ConvNeXt-V2), including the official dense fine-tuned mmdet 2.x /
mmseg 0.x whole models and the ConvNeXt V2 FCMAE pre-training files (a sparse MinkowskiEngine encoder, mapped as
the official fine-tuning code's ``remap_checkpoint_keys`` in ConvNeXt-V2 ``utils.py`` does); mmpretrain; timm
(``.pth``, ``.bin``, ``.safetensors``); HF transformers ConvNext / ConvNextV2. The 2025-2026 families: DINOv3's
ConvNeXt (Simeoni et al., 2025, facebookresearch/dinov3 ``dinov3/models/convnext.py``), its HF transformers
``DINOv3ConvNextModel`` and timm copies (``convnext_*.dinov3_lvd1689m``), EUPE (Meta, 2026: DINOv3's layout plus
``projectors``) and the OpenCLIP ConvNeXt towers (timm's names under ``visual.trunk.``, open_clip ``TimmModel``).
Our parameter names equal the official ones. Any file may be wrapped by ``module.`` (DDP) or ``_orig_mod.``
(torch.compile).

Output norms: a final norm that DINOv3 applies to the last stage's maps (its ``x_norm_patchtokens``) loads as our
``norm3``; a classifier's final norm (applied after pooling: official, timm with ``head.fc``, HF, OpenCLIP's
``head.norm`` before the projection) does not.
"""
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Dict, List, Mapping, Optional, Pattern, Tuple

from torch import Tensor

CONTAINERS = ('state_dict', 'model', 'model_ema')  # mmengine / mmpretrain, official (EMA only if no 'model')
WRAPPER_PREFIX = re.compile(r'^((module|_orig_mod)\.)+')  # DDP and torch.compile wrappers, possibly nested
WHOLE_MODEL_PREFIX = 'backbone.'  # where mmdet / mmseg models (and the official dense files) keep the backbone

OFFICIAL_URL = 'https://dl.fbaipublicfiles.com/convnext/'
V2_URL = OFFICIAL_URL + 'convnextv2/'
_V2_SIZES = ('atto', 'femto', 'pico', 'nano', 'tiny', 'base', 'large', 'huge')
_V2_FILES = (  # under V2_URL: FCMAE pre-trained, ImageNet-1k fine-tuned, ImageNet-22k fine-tuned
    *(f'pt_only/convnextv2_{size}_1k_224_fcmae.pt' for size in _V2_SIZES),
    *(f'im1k/convnextv2_{size}_1k_224_ema.pt' for size in _V2_SIZES),
    *(f'im22k/convnextv2_{size}_22k_{res}_ema.pt' for size in ('nano', 'tiny', 'base', 'large') for res in (224, 384)),
    'im22k/convnextv2_huge_22k_384_ema.pt', 'im22k/convnextv2_huge_22k_512_ema.pt')
# Published ImageNet files the configs start from (the ConvNeXt and ConvNeXt V2 READMEs, the dense code's configs,
# mmdet's RTMDet config) -> download URL, so a missing one can say where it lives. The V2 files are CC BY-NC 4.0,
# as the ConvNeXt V2 repository.
OFFICIAL_CHECKPOINTS: Dict[str, str] = {
    **{name: OFFICIAL_URL + name for name in (
        'convnext_tiny_1k_224.pth', 'convnext_small_1k_224.pth', 'convnext_base_1k_224.pth',
        'convnext_tiny_1k_224_ema.pth', 'convnext_small_1k_224_ema.pth', 'convnext_base_1k_224_ema.pth',
        'convnext_large_1k_224_ema.pth',
        'convnext_tiny_22k_224.pth', 'convnext_small_22k_224.pth', 'convnext_base_22k_224.pth',
        'convnext_large_22k_224.pth', 'convnext_xlarge_22k_224.pth',
        # ImageNet-22k pre-trained, 1k fine-tuned at 384 px: the start of detrex's DINO-ConvNeXt recipes
        'convnext_tiny_22k_1k_384.pth', 'convnext_small_22k_1k_384.pth', 'convnext_base_22k_1k_384.pth',
        'convnext_large_22k_1k_384.pth')},
    **{path.rpartition('/')[2]: V2_URL + path for path in _V2_FILES},
    # mmpretrain's ImageNet-21k pre-trained, 1k fine-tuned 384 px ConvNeXt-B, the start of mmdet's RTMDet-l ConvNeXt-B
    'convnext-base_in21k-pre-3rdparty_in1k-384px_20221219-4570f792.pth': 'https://download.openmmlab.com/'
    'mmclassification/v0/convnext/convnext-base_in21k-pre-3rdparty_in1k-384px_20221219-4570f792.pth',
}

# DINOv3's ConvNeXt files (Meta's downloads, gated: a request gives signed URLs) -> timm's ungated copy of the same
# weights on the Hugging Face Hub (timm's checkpoint_filter_fn of the file)
DINOV3_REQUEST = 'https://ai.meta.com/resources/models-and-libraries/dinov3-downloads/'
DINOV3_CHECKPOINTS: Dict[str, str] = {
    f'dinov3_convnext_{size}_pretrain_lvd1689m-{sha}.pth': f'hf://timm/convnext_{size}.dinov3_lvd1689m'
    for size, sha in (('tiny', '21b726bb'), ('small', '296db49d'), ('base', '801f2ba9'), ('large', '61fa432d'))}

Reshape = Callable[[Tensor], Tensor]


def flatten(tensor: Tensor) -> Tensor:
    """A per-channel tensor stored with singleton dims -> our (C,): GRN gamma / beta as (1, 1, 1, C) (official, HF)
    or (1, C) (FCMAE), a sparse conv's bias as (1, C) (FCMAE)."""
    return tensor.reshape(-1) if tensor.dim() > 1 else tensor


def sparse_kernel_to_conv(tensor: Tensor) -> Tensor:
    """A MinkowskiEngine kernel -> our conv weight, by the formula of the official ``remap_checkpoint_keys``.

    (k*k, C_in, C_out) -> (C_out, C_in, k, k) for a dense conv; (k*k, C) -> (C, 1, k, k) for a depthwise one. The
    kernel's k*k offsets run over the width first, hence the final swap of the two spatial axes: without it the
    kernel is its mirror image along the diagonal and still fits by shape.
    """
    k = math.isqrt(tensor.shape[0])
    if tensor.dim() == 3:
        return tensor.permute(2, 1, 0).reshape(tensor.shape[2], tensor.shape[1], k, k).transpose(3, 2)
    return tensor.permute(1, 0).reshape(tensor.shape[1], 1, k, k).transpose(3, 2)


def conv_to_linear(tensor: Tensor) -> Tensor:
    """A pointwise conv (out, in, 1, 1) (timm's ``conv_mlp``) -> our linear weight (out, in)."""
    return tensor.flatten(1) if tensor.dim() == 4 and tensor.shape[2:] == (1, 1) else tensor


GRN_RESHAPES: Dict[str, Reshape] = {'stages.{i}.{j}.grn.gamma': flatten, 'stages.{i}.{j}.grn.beta': flatten}


STAGE_BLOCK = {'i': r'\d+', 'j': r'\d+'}  # a part name's fields: {i} a stage, {j} a block


def template_regex(template: str, fields: Mapping[str, str] = STAGE_BLOCK) -> Pattern[str]:
    """The regex of a parameter name ``template``: each ``{field}`` of ``fields`` a named group of its pattern, then
    an optional ``.weight`` / ``.bias`` (group ``leaf``): the name stands for a part or its weight / bias."""
    pattern = re.escape(template)
    for name, group in fields.items():
        pattern = pattern.replace(re.escape('{' + name + '}'), f'(?P<{name}>{group})')
    return re.compile(f'^{pattern}(?P<leaf>\\.weight|\\.bias)?$')


@dataclass(frozen=True)
class Layout:
    """One checkpoint layout.

    Attributes:
        name: How reports name it.
        parts: Our name of each backbone part -> this layout's name; ``{i}`` is a stage, ``{j}`` a block, and a
            name stands for the part's parameter itself or for its ``.weight`` / ``.bias``. Parts the layout lacks
            are left out. Stage 0 has no downsample layer in any layout: the stem takes its place.
        classifier: Top-level parts of the pre-training model that are not backbone (a classifier's final norm and
            head, the FCMAE decoder), never loaded.
        prefixes: Prefixes its whole-model files put before the backbone, detected automatically.
        reshapes: Our part name -> how this layout's tensor becomes ours (applied to the part's every tensor), or
            our part name + '.weight' / '.bias' -> the same for that one tensor of the part.
        aliases: (pattern, replacement) applied to a key before matching: other spellings of the same names.
        excludes: Parts whose presence in a file rules this layout out (a classifier beside a final norm makes that
            norm the classifier's, not a dense output norm).
    """
    name: str
    parts: Mapping[str, str]
    classifier: Tuple[str, ...]
    prefixes: Tuple[str, ...] = ()
    reshapes: Mapping[str, Reshape] = field(default_factory=lambda: GRN_RESHAPES)
    aliases: Tuple[Tuple[Pattern[str], str], ...] = ()
    excludes: Tuple[str, ...] = ()

    @cached_property
    def _rules(self) -> List[Tuple[Pattern[str], str]]:
        """(regex of this layout's name, our part name) for each part."""
        return [(template_regex(theirs), ours) for ours, theirs in self.parts.items()]

    def _match(self, key: str) -> Optional[Tuple[str, str, str]]:
        """(our name, our part, the leaf '.weight' / '.bias' or '') of ``key``, or None."""
        for pattern, replacement in self.aliases:
            key = pattern.sub(replacement, key)
        for regex, part in self._rules:
            match = regex.match(key)
            if match:
                leaf = match.group('leaf') or ''
                return part.format(**match.groupdict()) + leaf, part, leaf
        return None

    def to_ours(self, key: str) -> Optional[str]:
        """Our name for ``key`` (prefixes stripped), or None if it is no backbone part of this layout."""
        match = self._match(key)
        return match[0] if match else None

    def convert(self, key: str, tensor: Tensor) -> Optional[Tuple[str, Tensor]]:
        """(our name, the tensor in our shape) for a backbone part of this layout, else None."""
        match = self._match(key)
        if match is None:
            return None
        fix = self.reshapes.get(match[1] + match[2]) or self.reshapes.get(match[1])
        return match[0], fix(tensor) if fix else tensor

    def classifier_part(self, key: str) -> Optional[str]:
        """The part of ``classifier`` that ``key`` belongs to, or None."""
        return next((part for part in self.classifier if _within(key, part)), None)

    def is_classifier(self, key: str) -> bool:
        return self.classifier_part(key) is not None

    def applies(self, keys: List[str]) -> bool:
        """False if ``keys`` hold a part of ``excludes``."""
        return not any(_within(key, part) for key in keys for part in self.excludes)

    @property
    def stem_key(self) -> str:
        """This layout's name of the stem conv weight: every ConvNeXt tower in a file has one."""
        return self.parts[OURS['stem_conv']] + '.weight'


def _within(key: str, part: str) -> bool:
    return key == part or key.startswith(part + '.')


OURS = dict(
    stem_conv='downsample_layers.0.0', stem_norm='downsample_layers.0.1',
    down_norm='downsample_layers.{i}.0', down_conv='downsample_layers.{i}.1',
    dwconv='stages.{i}.{j}.dwconv', norm='stages.{i}.{j}.norm', pwconv1='stages.{i}.{j}.pwconv1',
    grn_gamma='stages.{i}.{j}.grn.gamma', grn_beta='stages.{i}.{j}.grn.beta', pwconv2='stages.{i}.{j}.pwconv2',
    gamma='stages.{i}.{j}.gamma', out_norm='norm{i}')


def _parts(**names: str) -> Dict[str, str]:
    """{our name: the layout's name} from the layout's name of each part of ``OURS``."""
    return {OURS[part]: name for part, name in names.items()}


OFFICIAL_PARTS = {ours: ours for ours in OURS.values()}
TIMM_PARTS = _parts(
    stem_conv='stem.0', stem_norm='stem.1', down_norm='stages.{i}.downsample.0', down_conv='stages.{i}.downsample.1',
    dwconv='stages.{i}.blocks.{j}.conv_dw', norm='stages.{i}.blocks.{j}.norm', pwconv1='stages.{i}.blocks.{j}.mlp.fc1',
    grn_gamma='stages.{i}.blocks.{j}.mlp.grn.weight', grn_beta='stages.{i}.blocks.{j}.mlp.grn.bias',
    pwconv2='stages.{i}.blocks.{j}.mlp.fc2', gamma='stages.{i}.blocks.{j}.gamma')
TIMM_RESHAPES = {**GRN_RESHAPES, OURS['pwconv1']: conv_to_linear, OURS['pwconv2']: conv_to_linear}
TIMM_ALIASES = ((re.compile(r'^(stem|stages)_(\d+)\.'), r'\1.\2.'),)  # features_only models: stem_0, stages_0
# DINOv3's ConvNeXt: the official names, no head, its final norm (applied to the last stage's maps) stored twice,
# as `norm` and `norms.3` (its `norms` list is three identities and `norm`)
DINOV3_PARTS = {**{k: v for k, v in OFFICIAL_PARTS.items() if k != OURS['out_norm']}, 'norm3': 'norm'}
DINOV3_ALIASES = ((re.compile(r'^norms\.3\.'), 'norm.'),)
# open_clip's text tower and its CLIP extras, beside `visual`
CLIP_TEXT = ('token_embedding', 'positional_embedding', 'transformer', 'ln_final', 'text_projection', 'text',
             'logit_scale', 'logit_bias', 'attn_mask')

# Detection (``detect_layout``) prefers a layout that declares the file's prefix, then the one naming the most
# backbone keys, then the most other keys it knows; on a tie the earlier layout wins.
LAYOUTS: Tuple[Layout, ...] = (
    # the official files; the dense output norms norm{i} come from the official fine-tuned files
    Layout('official', OFFICIAL_PARTS, classifier=('norm', 'head'), prefixes=(WHOLE_MODEL_PREFIX,)),
    # the official names but three; mmpretrain's converter stores the final LayerNorm as norm3, which therefore loads
    # as the stage-3 output norm
    Layout('mmpretrain', {**OFFICIAL_PARTS, **_parts(
        dwconv='stages.{i}.{j}.depthwise_conv', pwconv1='stages.{i}.{j}.pointwise_conv1',
        pwconv2='stages.{i}.{j}.pointwise_conv2')}, classifier=('head',), prefixes=(WHOLE_MODEL_PREFIX,)),
    Layout('timm', TIMM_PARTS, classifier=('head',), reshapes=TIMM_RESHAPES, aliases=TIMM_ALIASES),
    Layout('hf', _parts(
        stem_conv='embeddings.patch_embeddings', stem_norm='embeddings.layernorm',
        down_norm='encoder.stages.{i}.downsampling_layer.0', down_conv='encoder.stages.{i}.downsampling_layer.1',
        dwconv='encoder.stages.{i}.layers.{j}.dwconv', norm='encoder.stages.{i}.layers.{j}.layernorm',
        pwconv1='encoder.stages.{i}.layers.{j}.pwconv1', grn_gamma='encoder.stages.{i}.layers.{j}.grn.weight',
        grn_beta='encoder.stages.{i}.layers.{j}.grn.bias', pwconv2='encoder.stages.{i}.layers.{j}.pwconv2',
        gamma='encoder.stages.{i}.layers.{j}.layer_scale_parameter'), classifier=('layernorm', 'classifier'),
        prefixes=('convnext.', 'convnextv2.')),  # *ForImageClassification
    # FCMAE pre-training (ConvNeXt V2): the sparse encoder under `encoder.`, MinkowskiEngine names (`.kernel`, `.ln`,
    # `.linear`) and shapes; no layer scale, no output norm
    Layout('fcmae', _parts(
        stem_conv='encoder.downsample_layers.0.0', stem_norm='encoder.downsample_layers.0.1',
        down_norm='encoder.downsample_layers.{i}.0.ln', down_conv='encoder.downsample_layers.{i}.1',
        dwconv='encoder.stages.{i}.{j}.dwconv', norm='encoder.stages.{i}.{j}.norm.ln',
        pwconv1='encoder.stages.{i}.{j}.pwconv1.linear', grn_gamma='encoder.stages.{i}.{j}.grn.gamma',
        grn_beta='encoder.stages.{i}.{j}.grn.beta', pwconv2='encoder.stages.{i}.{j}.pwconv2.linear'),
        classifier=('decoder', 'mask_token', 'proj', 'pred'),
        reshapes={**GRN_RESHAPES, **{OURS[part] + leaf: fix for part in ('down_conv', 'dwconv')
                                     for leaf, fix in (('.weight', sparse_kernel_to_conv), ('.bias', flatten))}},
        aliases=((re.compile(r'\.kernel$'), '.weight'),)),
    # after official: a file that names no final norm reads as official
    Layout('dinov3', DINOV3_PARTS, classifier=(), aliases=DINOV3_ALIASES, excludes=('head',)),
    # DINOv3's layout; the EUPE release files may hold distillation projectors and feature norms beside the backbone
    # (timm's checkpoint_filter_fn drops `projectors.*` and `norms.*` too)
    Layout('eupe', DINOV3_PARTS, classifier=('projectors', 'norms'), aliases=DINOV3_ALIASES, excludes=('head',)),
    # transformers' DINOv3ConvNextModel: stage 0's downsample_layers are the stem (conv, LN), later ones (LN, conv);
    # its final `layer_norm` normalises the last stage's tokens
    Layout('hf_dinov3', {**_parts(
        stem_conv='stages.0.downsample_layers.0', stem_norm='stages.0.downsample_layers.1',
        down_norm='stages.{i}.downsample_layers.0', down_conv='stages.{i}.downsample_layers.1',
        dwconv='stages.{i}.layers.{j}.depthwise_conv', norm='stages.{i}.layers.{j}.layer_norm',
        pwconv1='stages.{i}.layers.{j}.pointwise_conv1', pwconv2='stages.{i}.layers.{j}.pointwise_conv2',
        gamma='stages.{i}.layers.{j}.gamma'), 'norm3': 'layer_norm'}, classifier=(),
        aliases=((re.compile(r'^model\.stages\.'), 'stages.'),)),  # its in-memory names; saved files drop `model.`
    # timm's copies of DINOv3 / EUPE (`checkpoint_filter_fn` of the DINOv3 file): DINOv3's `norm` as `head.norm` with
    # no classifier beside it. With `head.fc` the file is a classifier and `head.norm` its pooled-feature norm (timm).
    Layout('timm_dinov3', {**TIMM_PARTS, 'norm3': 'head.norm'}, classifier=(), reshapes=TIMM_RESHAPES,
           aliases=TIMM_ALIASES, excludes=('head.fc',)),
    # OpenCLIP's TimmModel: the timm trunk under `visual.trunk.`; its `head.norm` runs after pooling, before the
    # projection `visual.head` (as timm's classifier norm), so it stays out of norm3; the text tower is beside it
    Layout('openclip', TIMM_PARTS, classifier=('head', 'visual.head', *CLIP_TEXT), prefixes=('visual.trunk.',),
           reshapes=TIMM_RESHAPES, aliases=TIMM_ALIASES),
)
LAYOUT_NAMES = tuple(layout.name for layout in LAYOUTS)
AUTO_PREFIXES = tuple(dict.fromkeys(p for layout in LAYOUTS for p in layout.prefixes))


def detect_layout(keys: List[str], prefix: str = '') -> Optional[Layout]:
    """The layout of ``keys`` (``prefix`` already stripped), or None if no layout names any of them as backbone.

    Among the layouts that apply (``Layout.excludes``) and name a backbone key, the one that declares ``prefix``
    wins, then the one naming the most backbone keys, then the most classifier keys; then the earlier one.
    """
    scores = []
    for layout in LAYOUTS:
        named = [layout.to_ours(k) is not None for k in keys]
        backbone = sum(named)
        known = sum(not n and layout.is_classifier(k) for n, k in zip(named, keys))
        scores.append((bool(backbone) and layout.applies(keys), bool(prefix) and prefix in layout.prefixes,
                       backbone, known))
    best = max(range(len(LAYOUTS)), key=scores.__getitem__)  # max keeps the first of equals: LAYOUTS order
    return LAYOUTS[best] if scores[best][0] else None
