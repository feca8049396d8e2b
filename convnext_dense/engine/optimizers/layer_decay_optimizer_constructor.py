"""Layer-wise and stage-wise learning-rate decay for models with a ConvNeXt backbone.

The rule is the official one of the ConvNeXt dense-prediction code (``object_detection/mmcv_custom`` and
``semantic_segmentation/mmcv_custom``): parameter p with layer id i gets ``lr = base_lr * decay_rate ** (L + 1 - i)``
and no weight decay when it is 1-D or a bias. It lives in ``models.layer_decay`` (``LayerDecay``: the backbone, found
as the one module with ``num_layers()`` and ``layer_id()``, each parameter's layer id, lr scale and weight-decay
exemption), which ``convnext_dense.layer_decay_param_groups`` also uses for plain PyTorch optimizers; this
constructor adds mmengine's options on top. Everything outside the backbone's stages (output norms, neck, heads) is
layer L + 1.

Recipes written for mmengine's default constructor (Mask2Former's: no weight decay for norms and query / level
embeddings, but decay for the head's other biases) keep that treatment outside the backbone with
``paramwise_cfg.outside_backbone='mmengine'``.
"""
from collections import defaultdict
from typing import Dict, List, Optional

from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from ...models.layer_decay import DecayedParameter, LayerDecay
from ...utils.errors import ConfigError
from ...utils.logging import print_log

OUTSIDE_BACKBONE_RULES = ('convnext', 'mmengine')


class ConvNeXtLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """Optimizer wrapper constructor with ConvNeXt layer-wise / stage-wise learning-rate decay.

    ``paramwise_cfg`` keys:
        decay_rate: Multiplier per layer below the top, in (0, 1]. Default: 1 (no decay).
        decay_type: 'layer_wise' (groups of three blocks) or 'stage_wise'. Default: 'layer_wise'.
        num_layers: L of the published configs; derived from the backbone's depths when absent (6 for tiny, 12 for
            27-block stage 2). A value below what the backbone needs is an error.
        custom_keys: mmengine's per-name ``lr_mult`` / ``decay_mult``, applied on top of the decay.
        outside_backbone: 'convnext' (the official rule everywhere: no weight decay for 1-D parameters and biases)
            or 'mmengine' (parameters outside the backbone get what mmengine's DefaultOptimWrapperConstructor gives
            them under the same paramwise_cfg: custom_keys, norm_decay_mult, bias_decay_mult...). Default:
            'convnext'.

    Parameters with equal options are merged into one group, so the optimizer step stays cheap.
    """

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   is_dcn_module: Optional[float] = None) -> None:
        rule = LayerDecay(module, self.paramwise_cfg.get('decay_rate', 1.0),
                          self.paramwise_cfg.get('decay_type', 'layer_wise'), self.paramwise_cfg.get('num_layers'))
        outside = self.paramwise_cfg.get('outside_backbone', 'convnext')
        if outside not in OUTSIDE_BACKBONE_RULES:
            raise ConfigError(f'paramwise_cfg.outside_backbone={outside!r}; valid: {OUTSIDE_BACKBONE_RULES}')
        stock = self._mmengine_options(module) if outside == 'mmengine' else {}
        custom_keys = self.paramwise_cfg.get('custom_keys', {})
        sorted_keys = sorted(sorted(custom_keys), key=len, reverse=True)  # mmengine's precedence: longest first

        groups: Dict[tuple, dict] = {}
        # (layer id, part, lr scale, wd) -> [tensors, numel]; part: the backbone, or the head's module holding it
        table: Dict[tuple, List[int]] = defaultdict(lambda: [0, 0])
        for p in rule.parameters():
            if stock and not p.in_backbone:
                options = dict(stock[id(p.param)])
            else:
                options = self._convnext_options(p, prefix, custom_keys, sorted_keys)
            wd = options.get('weight_decay')
            if wd is None:
                del options['weight_decay']
            group = groups.setdefault(tuple(sorted(options.items())), dict(params=[], **options))
            group['params'].append(p.param)
            part = rule.backbone_name if p.in_backbone else '.'.join(p.name.split('.')[:-1][:2])
            scale = options['lr'] / self.base_lr if self.base_lr else p.lr_scale  # lr=0: a frozen run's table
            row = table[(p.layer, part, scale, wd)]
            row[0] += 1
            row[1] += p.param.numel()
        params.extend(groups.values())
        self._log_table(table, rule.decay_type, rule.decay_rate, rule.num_layers, len(groups))

    def _convnext_options(self, p: DecayedParameter, prefix: str, custom_keys: dict, sorted_keys: List[str]) -> dict:
        """lr and weight decay of one parameter under the official rule, custom_keys applied on top."""
        wd = 0.0 if p.no_weight_decay else self.base_wd
        options = dict(lr=self.base_lr * p.lr_scale, weight_decay=wd)
        key = next((k for k in sorted_keys if k in f'{prefix}{p.name}'), None)
        if key is not None:
            options['lr'] *= custom_keys[key].get('lr_mult', 1.0)
            if wd is not None:
                options['weight_decay'] *= custom_keys[key].get('decay_mult', 1.0)
        return options

    def _mmengine_options(self, module: nn.Module) -> Dict[int, dict]:
        """{id(parameter): its lr and weight decay} as mmengine's DefaultOptimWrapperConstructor sets them."""
        stock: List[dict] = []  # a plain instance: its add_params recurses into its own, not into ours
        plain = DefaultOptimWrapperConstructor(dict(self.optim_wrapper_cfg, optimizer=self.optimizer_cfg),
                                               self.paramwise_cfg)
        plain.add_params(stock, module)
        return {id(p): dict(lr=g.get('lr', self.base_lr), weight_decay=g.get('weight_decay', self.base_wd))
                for g in stock for p in g['params']}

    @staticmethod
    def _log_table(table: Dict[tuple, List[int]], decay_type: str, decay_rate: float, num_layers: int,
                   num_groups: int) -> None:
        lines = [f'ConvNeXt {decay_type} lr decay: rate {decay_rate}, num_layers {num_layers}, '
                 f'{num_groups} optimizer groups',
                 f'{"layer":>5} {"part":<34} {"lr scale":>9} {"wd":>7} {"tensors":>7} {"params":>11}']
        for (layer, part, scale, wd), (tensors, numel) in sorted(
                table.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][3] or 0)):
            lines.append(f'{layer:>5} {part:<34} {scale:>9.4f} {wd if wd is not None else "-":>7} {tensors:>7} '
                         f'{numel:>11,}')
        print_log('\n'.join(lines), logger='current')
