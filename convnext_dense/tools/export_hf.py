"""Export to Hugging Face transformers: an mmseg UperNet + ConvNeXt (V1 or V2) as ``UperNetForSemanticSegmentation``,
an mmdet (instance, panoptic) or mmseg (semantic) Mask2Former + ConvNeXt as ``Mask2FormerForUniversalSegmentation``,
or any config's ConvNeXt backbone as ``ConvNextBackbone`` / ``ConvNextV2Backbone``: a folder (``config.json``,
``model.safetensors``; for the whole model also the image processor's ``preprocessor_config.json``) that
``from_pretrained`` loads with no missing, unexpected or mismatched keys. The names come from the tables of
``checkpoint.hf_upernet`` and ``checkpoint.hf_mask2former``, which read them both ways.

transformers' ConvNeXt hard-codes LayerNorm eps 1e-6 (every norm; its ``layer_norm_eps`` sets only the classifier's
pooled norm) and always builds four stages; its UperNet feeds every returned stage to the head and the third to the
auxiliary head; its Mask2Former has one head count for every attention and 4 sampling points on 3 levels. A config
outside that, or a model transformers has no class for, is refused in one line naming the field. transformers is
imported here only (``pip install "convnext_dense[transformers]"``).
"""
import os
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config, ConfigDict
from torch import nn

from ..checkpoint.fit import check_checkpoint_fits, loaded_state, name_heads_as_model
from ..checkpoint.hf_mask2former import mask2former_to_hf
from ..checkpoint.hf_upernet import backbone_to_hf, upernet_to_hf
from ..checkpoint.loading import abridge
from ..datasets.coco_checks import config_classes
from ..models.backbone import ConvNeXt
from ..utils.errors import CheckpointError, ConfigError
from .cli import build_model, load_config, toolkit_scope
from .export_onnx import build_backbone

EXTRA = 'transformers'  # pip install 'convnext_dense[transformers]'
HF_EPS = 1e-6  # transformers' ConvNextLayerNorm eps, fixed in modeling_convnext.py / modeling_convnextv2.py
BN_EPS = 1e-5  # transformers' UperNet BatchNorm2d, torch's default
NORMS = ('BN', 'SyncBN')  # the heads' norms that are a BatchNorm2d at test time
HF_POINTS, HF_LEVELS = 4, 3  # transformers' Mask2Former pixel decoder: sampling points, feature levels (fixed)
AUX_IN_INDEX, AUX_KERNEL = 2, 3  # transformers' UperNetFCNHead defaults, not in its config
ONNX_HINT = ('to ONNX instead: tools/export_onnx.py CONFIG --part model (the whole segmentor, or a detector\'s '
             'backbone + neck)')


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ImportError(f'export to transformers needs it: pip install "convnext_dense[{EXTRA}]"') from None
    return transformers


def check_backbone(backbone: nn.Module, where: str) -> None:
    """Refuse a backbone transformers' ConvNeXt cannot express (one line naming the field).

    Raises:
        ConfigError: Not our ConvNeXt, another LayerNorm eps, stages cut before the last, or layer scale beside GRN.
    """
    if not isinstance(backbone, ConvNeXt):
        raise ConfigError(f'{where}: model.backbone is {type(backbone).__name__}; transformers has ConvNeXt backbones '
                          f'only (convnext_dense.ConvNeXt). {ONNX_HINT}')
    if backbone.norm_eps != HF_EPS:
        raise ConfigError(f'{where}: model.backbone norm_eps is {backbone.norm_eps:g}; transformers\' ConvNeXt '
                          f'hard-codes LayerNorm eps {HF_EPS:g}, so its outputs would differ. {ONNX_HINT}')
    if len(backbone.stages) != len(backbone.arch_depths):
        raise ConfigError(f'{where}: model.backbone.out_indices={tuple(backbone.out_indices)} builds '
                          f'{len(backbone.stages)} of {len(backbone.arch_depths)} stages; transformers\' ConvNeXt '
                          'always builds all four: return the last stage too')
    has_grn = any('.grn.' in k for k in backbone.state_dict())
    if has_grn and any(k.endswith('.gamma') and '.grn.' not in k for k in backbone.state_dict()):
        raise ConfigError(f'{where}: model.backbone has GRN and layer scale (layer_scale_init_value > 0); '
                          'transformers\' ConvNextV2 has no layer scale: set layer_scale_init_value=0')


def backbone_config(backbone: ConvNeXt) -> Any:
    """``ConvNextConfig`` (or ``ConvNextV2Config`` for a GRN backbone) of ``backbone``, ``out_features`` from its
    ``out_indices``."""
    transformers = _transformers()
    keys = list(backbone.state_dict())
    kwargs = dict(num_channels=backbone.downsample_layers[0][0].in_channels, depths=list(backbone.arch_depths),
                  hidden_sizes=list(backbone.arch_channels), drop_path_rate=0.0,
                  out_features=[f'stage{i + 1}' for i in backbone.out_indices])
    if any('.grn.' in k for k in keys):
        return transformers.ConvNextV2Config(**kwargs)
    # a file without layer scale has no gammas; transformers then builds none (layer_scale_init_value 0)
    return transformers.ConvNextConfig(layer_scale_init_value=1.0 if any(k.endswith('.gamma') for k in keys) else 0.0,
                                       **kwargs)


def mask2former_head(cfg: Config) -> Optional[str]:
    """The head's attribute of a Mask2Former config (mmdet's instance / panoptic, mmseg's semantic), else None."""
    model = cfg.model
    if model.get('type') == 'Mask2Former':
        return 'panoptic_head'
    if model.get('type') == 'EncoderDecoder' and (model.get('decode_head') or {}).get('type') == 'Mask2FormerHead':
        return 'decode_head'
    return None


def _check_upernet(cfg: Config, where: str) -> Tuple[ConfigDict, Optional[ConfigDict]]:
    model = cfg.model
    decode, aux = model.get('decode_head') or {}, model.get('auxiliary_head')
    if model.get('type') != 'EncoderDecoder' or decode.get('type') != 'UPerHead' or isinstance(aux, list):
        kind = ' + '.join(str(x) for x in (model.get('type'), decode.get('type') or model.get('roi_head', {}).get(
            'type') or model.get('bbox_head', {}).get('type') or model.get('panoptic_head', {}).get('type')) if x)
        raise ConfigError(f'{where}: model is {kind}; transformers has no class this export writes for it. '
                          'tools/export_hf.py exports an UperNet or Mask2Former + ConvNeXt (--part model) and any '
                          f'config\'s ConvNeXt backbone (--part backbone); {ONNX_HINT}')
    if decode.get('align_corners'):
        raise ConfigError(f'{where}: model.decode_head.align_corners=True; transformers\' UperNet uses False')
    if aux is not None:
        fields = dict(type=('FCNHead', aux.get('type')), in_index=(AUX_IN_INDEX, aux.get('in_index')),
                      kernel_size=(AUX_KERNEL, aux.get('kernel_size', AUX_KERNEL)),
                      dilation=(1, aux.get('dilation', 1)), align_corners=(False, aux.get('align_corners', False)))
        for name, (valid, value) in fields.items():
            if value != valid:
                raise ConfigError(f'{where}: model.auxiliary_head.{name}={value!r}; transformers\' UperNet '
                                  f'auxiliary head has {name}={valid!r}')
    return decode, aux


def upernet_config(decode: ConfigDict, aux: Optional[ConfigDict], model: nn.Module, classes: List[str],
                   where: str) -> Any:
    """``UperNetConfig`` of an mmseg UperNet + ConvNeXt (its ``decode_head`` and ``auxiliary_head`` configs as
    ``_check_upernet`` returns them), ``id2label`` from the dataset's classes."""
    backbone = model.backbone
    in_index, every = decode.get('in_index', -1), list(range(len(backbone.out_indices)))
    if not isinstance(in_index, (list, tuple)) or list(in_index) != every:
        raise ConfigError(f'{where}: model.decode_head.in_index={in_index}; transformers\' UperNet reads every '
                          f'returned stage: {tuple(every)}')
    for name, head in (('decode_head', decode), ('auxiliary_head', aux or {})):
        norm = (head.get('norm_cfg') or {}).get('type', 'BN') if head else 'BN'
        if norm not in NORMS:
            raise ConfigError(f'{where}: model.{name}.norm_cfg type={norm!r}; transformers\' UperNet has '
                              f'BatchNorm ({" or ".join(NORMS)} here)')
    eps = sorted({m.eps for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)} - {BN_EPS})
    if eps:
        raise ConfigError(f'{where}: model.decode_head / auxiliary_head norm_cfg eps={eps[0]:g}; transformers\' '
                          f'UperNet uses BatchNorm eps {BN_EPS:g}')
    aux_kwargs = dict(use_auxiliary_head=False) if aux is None else dict(
        use_auxiliary_head=True, auxiliary_in_channels=aux.in_channels, auxiliary_channels=aux.channels,
        auxiliary_num_convs=aux.get('num_convs', 2), auxiliary_concat_input=aux.get('concat_input', True),
        auxiliary_loss_weight=aux.get('loss_decode', {}).get('loss_weight', 0.4))
    return _transformers().UperNetConfig(
        backbone_config=backbone_config(backbone), hidden_size=decode.channels,
        pool_scales=list(decode.get('pool_scales', (1, 2, 3, 6))),  # mmseg UPerHead's default
        loss_ignore_index=decode.get('ignore_index', 255), id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)}, **aux_kwargs)


def mask2former_config(head: nn.Module, backbone: ConvNeXt, classes: List[str], where: str) -> Any:
    """``Mask2FormerConfig`` of an mmdet / mmseg Mask2Former head: transformers' ``decoder_layers`` counts the
    prediction from the learned queries as a layer (mmdet's ``num_layers`` + 1); one head count for all attention
    and 4 sampling points per level in the pixel decoder, as transformers builds them."""
    pixel, decoder = head.pixel_decoder, head.transformer_decoder
    deform = pixel.encoder.layers[0].self_attn
    heads = {deform.num_heads, decoder.layers[0].self_attn.attn.num_heads, decoder.layers[0].cross_attn.attn.num_heads}
    fields = {'num_heads of every attention (one value)': (len(heads), 1), 'pixel decoder num_points': (
        deform.num_points, HF_POINTS), 'pixel decoder num_levels': (deform.num_levels, HF_LEVELS),
        'backbone out_indices count': (len(backbone.out_indices), 4)}
    for name, (value, valid) in fields.items():
        if value != valid:
            raise ConfigError(f'{where}: Mask2Former {name} is {value}; transformers\' Mask2Former has {valid}')
    return _transformers().Mask2FormerConfig(
        backbone_config=backbone_config(backbone), feature_size=pixel.mask_feature.in_channels,
        mask_feature_size=pixel.mask_feature.out_channels, hidden_dim=head.query_feat.embedding_dim,
        encoder_feedforward_dim=pixel.encoder.layers[0].ffn.layers[0][0].out_features,
        dim_feedforward=decoder.layers[0].ffn.layers[0][0].out_features, encoder_layers=len(pixel.encoder.layers),
        decoder_layers=len(decoder.layers) + 1, num_attention_heads=heads.pop(), num_queries=head.num_queries,
        no_object_weight=head.class_weight[-1], class_weight=head.loss_cls.loss_weight,
        mask_weight=head.loss_mask.loss_weight, dice_weight=head.loss_dice.loss_weight,
        train_num_points=head.num_points, dropout=0.0, id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)})


def dataset_classes(cfg: Config, num_classes: int, where: str) -> List[str]:
    """The test dataset's class names (its ``metainfo`` or its class's ``METAINFO``, as the data checks read them)."""
    with toolkit_scope(cfg):  # the dataset class is looked up in the config's toolkit
        classes, _ = config_classes(cfg.get('test_dataloader', {}).get('dataset', {}))
    if len(classes) != num_classes:
        raise ConfigError(f'{where}: test_dataloader.dataset names {len(classes) or "none"} classes, the model '
                          f'predicts {num_classes}: id2label needs one name per class')
    return list(classes)


def image_processor(cfg: Config, where: str, mask2former: bool = False) -> Any:
    """transformers' ``SegformerImageProcessor`` (``Mask2FormerImageProcessor`` padding to 32 as mmdet) with the
    config's mean and std, no resize: mmseg and mmdet keep an image's aspect ratio where the processor has one fixed
    size, so the caller resizes as the config's test pipeline does."""
    pre = cfg.model.data_preprocessor
    if not pre.get('bgr_to_rgb', False):
        raise ConfigError(f'{where}: model.data_preprocessor.bgr_to_rgb is False: the mean / std are for BGR, '
                          'transformers\' processors read RGB')
    kwargs = dict(do_resize=False, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                  image_mean=[m / 255 for m in pre.mean], image_std=[s / 255 for s in pre.std], do_reduce_labels=False)
    transformers = _transformers()
    if mask2former:
        return transformers.Mask2FormerImageProcessor(size_divisor=pre.get('pad_size_divisor', 32), **kwargs)
    return transformers.SegformerImageProcessor(**kwargs)


def _hf_model(cls: Any, config: Any, state: Dict[str, Any]) -> nn.Module:
    """``cls(config)`` holding ``state``: every key placed, none left over (strict)."""
    model = cls(config)
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_weights(model: nn.Module, checkpoint: str, config: str) -> None:
    """Load the whole-model file ``checkpoint`` into ``model`` strictly, through mmengine's ``CheckpointLoader``
    (convnext_dense's safe reader), as mmengine's ``load_checkpoint`` does: its ``state_dict`` (else the file's dict),
    ``module.`` stripped; a Mask2Former head saved under the other toolkit's name is renamed first.

    Raises:
        CheckpointError: The file does not fit the model of ``config``; one line naming both (and the arch to set,
            or the keys missing, unexpected or of another shape).
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    read = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu', logger='silent')
    name_heads_as_model(model, read)
    check_checkpoint_fits(model, read, checkpoint)
    state = {key[len('module.'):] if key.startswith('module.') else key: value  # as mmengine's revise_keys
             for key, value in loaded_state(read).items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        own = model.state_dict()
        wrong = {'missing': sorted(own.keys() - state.keys()), 'unexpected': sorted(state.keys() - own.keys()),
                 'of another shape': sorted(k for k in own.keys() & state.keys() if own[k].shape != state[k].shape)}
        found = '; '.join(f'{len(keys)} {what} ({abridge(keys)})' for what, keys in wrong.items() if keys)
        raise CheckpointError(f'checkpoint {checkpoint} does not fit the model of {config}: '
                              f'{found or str(e).strip().splitlines()[0]}') from None


def export_hf(config: str, checkpoint: Optional[str], out_dir: str, part: str = 'model') -> nn.Module:
    """Write ``out_dir`` for transformers' ``from_pretrained`` and return the transformers model written.

    Args:
        config: An UperNet (mmseg) or Mask2Former (mmdet, mmseg) config for ``part='model'``; any config with a
            ConvNeXt backbone for ``part='backbone'``.
        checkpoint: The weights: a whole-model file for ``model``; for ``backbone`` any ConvNeXt layout. None: random.
        out_dir: The folder to write (created).
        part: 'model' (``UperNetForSemanticSegmentation`` / ``Mask2FormerForUniversalSegmentation``) or 'backbone'
            (``ConvNextBackbone`` / V2). Default: 'model'.

    Raises:
        ConfigError: The config describes something transformers cannot express (the message names the field).
        CheckpointError: ``checkpoint`` does not fit the config's model (``load_weights``).
    """
    transformers = _transformers()
    if part == 'backbone':
        backbone = build_backbone(config, checkpoint)
        check_backbone(backbone, config)
        hf_config = backbone_config(backbone)
        cls = transformers.ConvNextV2Backbone if hf_config.model_type == 'convnextv2' else transformers.ConvNextBackbone
        hf_model = _hf_model(cls, hf_config, backbone_to_hf(backbone.state_dict()))
        hf_model.save_pretrained(out_dir)
        return hf_model
    cfg = load_config(config)
    head_name = mask2former_head(cfg)
    if head_name is None:
        decode, aux = _check_upernet(cfg, config)  # before building: a detector's config is refused by name
    elif cfg.model.get('auxiliary_head'):
        raise ConfigError(f'{config}: model.auxiliary_head: transformers\' Mask2Former has none; remove it '
                          '(auxiliary_head=None)')
    model = build_model(cfg)
    check_backbone(model.backbone, config)
    if checkpoint is not None:
        load_weights(model, checkpoint, config)
    if head_name is None:
        classes = dataset_classes(cfg, model.decode_head.num_classes, config)
        hf_config = upernet_config(decode, aux, model, classes, config)
        hf_model = _hf_model(transformers.UperNetForSemanticSegmentation, hf_config,
                             upernet_to_hf(model.state_dict()))
    else:
        head = getattr(model, head_name)
        classes = dataset_classes(cfg, head.num_classes, config)
        hf_config = mask2former_config(head, model.backbone, classes, config)
        hf_model = _hf_model(transformers.Mask2FormerForUniversalSegmentation, hf_config, mask2former_to_hf(
            model.state_dict(), head_name + '.', head.num_classes, hf_config.no_object_weight))
    os.makedirs(out_dir, exist_ok=True)
    hf_model.save_pretrained(out_dir)
    image_processor(cfg, config, mask2former=head_name is not None).save_pretrained(out_dir)
    return hf_model
