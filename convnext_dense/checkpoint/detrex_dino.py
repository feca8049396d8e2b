"""detrex's DINO checkpoints -> mmdet's DINO: the key names of IDEA-Research/detrex (``projects/dino/modeling/``,
``detrex/layers/``, ``detrex/modeling/neck/channel_mapper.py``, commit e244e6c) renamed to those of mmdet 3.3.0's
``DINO`` / ``DinoTransformerEncoder`` / ``DinoTransformerDecoder`` / ``DINOHead``.

detrex publishes its trained DINO-ConvNeXt files (``dino_convnext_{tiny,small,base,large}_384_4scale_12ep.pth``,
detrex-storage v0.4.0; box AP 52.4 / 54.2 / 55.1 / 55.5 in ``projects/dino/README.md``); ``configs/coco/
dino_convnext_*_384_4scale_12ep.py`` keep detrex's positional encoding, so the renamed tensors are the model those
configs build. The two models differ in names only: the same layers in the same order with the same shapes.

* detrex's ConvNeXt (``detrex/modeling/backbone/convnext.py``) has the official names, which are ours: ``backbone.*``
  passes unchanged.
* detrex keeps its box and class heads twice, as ``class_embed`` / ``bbox_embed`` and as the decoder's
  ``transformer.decoder.class_embed`` / ``bbox_embed`` (the same modules, shared): the decoder's copies are dropped.
* Its box head is an MLP of three Linear layers (``layers.0..2``); mmdet's a Sequential with ReLUs between
  (``0, 2, 4``).
"""
import re
from typing import Callable, Dict, Sequence, Tuple, Union

from torch import Tensor

from ..utils.errors import CheckpointError

StateDict = Dict[str, Tensor]
Replacement = Union[str, Callable[[re.Match], str]]

# detrex name pattern -> mmdet name; the first that matches a key renames it
RENAMES: Tuple[Tuple[str, Replacement], ...] = (
    (r'^backbone\.(.+)$', r'backbone.\1'),
    (r'^neck\.(convs|extra_convs)\.(\d+)\.conv\.(weight|bias)$', r'neck.\1.\2.conv.\3'),
    (r'^neck\.(convs|extra_convs)\.(\d+)\.norm\.(weight|bias)$', r'neck.\1.\2.gn.\3'),  # ConvModule's GroupNorm name
    (r'^transformer\.level_embeds$', 'level_embed'),
    (r'^transformer\.tgt_embed\.weight$', 'query_embedding.weight'),
    (r'^transformer\.enc_output\.(weight|bias)$', r'memory_trans_fc.\1'),
    (r'^transformer\.enc_output_norm\.(weight|bias)$', r'memory_trans_norm.\1'),
    (r'^transformer\.encoder\.layers\.(\d+)\.attentions\.0\.(.+)$', r'encoder.layers.\1.self_attn.\2'),
    (r'^transformer\.decoder\.layers\.(\d+)\.attentions\.0\.(.+)$', r'decoder.layers.\1.self_attn.\2'),
    (r'^transformer\.decoder\.layers\.(\d+)\.attentions\.1\.(.+)$', r'decoder.layers.\1.cross_attn.\2'),
    (r'^transformer\.(encoder|decoder)\.layers\.(\d+)\.ffns\.0\.(.+)$', r'\1.layers.\2.ffn.\3'),
    (r'^transformer\.(encoder|decoder)\.layers\.(\d+)\.norms\.(\d+)\.(weight|bias)$', r'\1.layers.\2.norms.\3.\4'),
    (r'^transformer\.decoder\.ref_point_head\.(.+)$', r'decoder.ref_point_head.\1'),
    (r'^transformer\.decoder\.norm\.(weight|bias)$', r'decoder.norm.\1'),
    (r'^class_embed\.(\d+)\.(weight|bias)$', r'bbox_head.cls_branches.\1.\2'),
    (r'^bbox_embed\.(\d+)\.layers\.(\d+)\.(weight|bias)$',
     lambda m: f'bbox_head.reg_branches.{m[1]}.{2 * int(m[2])}.{m[3]}'),  # Linear i of the MLP: ReLUs between
    (r'^label_enc\.weight$', 'dn_query_generator.label_embedding.weight'),
)
SHARED = re.compile(r'^transformer\.decoder\.(class_embed|bbox_embed)\.')  # the heads again, as the decoder holds them
MARKERS = ('transformer.level_embeds', 'transformer.tgt_embed.weight', 'label_enc.weight')


def is_detrex_dino(keys: Sequence[str]) -> bool:
    """Whether ``keys`` are a detrex DINO model's: its transformer's level / query tables and denoising label table."""
    return set(MARKERS) <= set(keys)


def mmdet_name(key: str) -> str:
    """mmdet's DINO name of a detrex DINO key (not one of ``SHARED``).

    Raises:
        CheckpointError: A key no rule places.
    """
    for pattern, replacement in RENAMES:
        if re.match(pattern, key):
            return re.sub(pattern, replacement, key)
    raise CheckpointError(f'detrex DINO checkpoint: no mmdet DINO name for its key {key!r} (a detrex DINO of another '
                          'kind, e.g. with a post-norm encoder or without learnt queries?)')


def detrex_dino_to_mmdet(state: StateDict) -> StateDict:
    """A detrex DINO state dict with mmdet's DINO names; the decoder's shared copies of the heads dropped."""
    return {mmdet_name(key): tensor for key, tensor in state.items() if not SHARED.match(key)}


# What its ``model_layouts.ModelLayout`` record says the file holds
MODEL = 'a detrex DINO detector (configs/coco/dino_convnext_*_384_4scale_12ep.py)'
