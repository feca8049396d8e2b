"""mmengine's weight-init protocol on a plain ``nn.Module``, so that the backbones need only PyTorch.

An OpenMMLab model initialises its parts through three names of mmengine's ``BaseModule``
(``mmengine/model/base_module.py``): ``init_cfg`` (a dict or a list of dicts, deep-copied), ``is_init`` (True once
initialised: a parent's ``init_weights`` calls a child's ``init_weights`` only while it is False, so a child never
initialises, or loads its weights, twice) and ``init_weights()``. ``InitWeightsModule`` implements them for a module
whose children are plain PyTorch layers. A parent that tracks the init (mmengine's ``_params_init_info``, set on
every submodule and read by ``update_init_info`` after our ``init_weights``) sees an ordinary module whose
parameters changed.

What ``init_weights`` does with ``init_cfg``:

* None: the subclass's default init (``default_init``; ConvNeXt's official truncated-normal init);
* ``dict(type='Pretrained', checkpoint=PATH, prefix=None, map_location='cpu')``: the subclass's loader
  (``load_pretrained``: convnext_dense's reader and layouts, not mmengine's ``load_checkpoint``);
* any other type (``Kaiming``, ``Normal``, ... with ``layer`` / ``override``): mmengine's initializers
  (``mmengine.model.initialize``), imported only then; without mmengine that is a ValueError.

In a list, the other types run first and ``Pretrained`` last, as mmengine orders them; with a ``Pretrained`` entry
the default init does not run (weights the file lacks keep PyTorch's init, as with mmengine's ``BaseModule``).
"""
import copy
import logging
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn

from ..utils.errors import ConfigError, ConfigTypeError
from ..utils.logging import print_log

PRETRAINED = 'Pretrained'
InitCfg = Optional[Union[Dict[str, Any], List[Dict[str, Any]]]]


def init_cfg_list(init_cfg: InitCfg) -> List[Dict[str, Any]]:
    """``init_cfg`` as a list of dicts, each with a ``type``; TypeError / ValueError naming what is wrong."""
    if init_cfg is None:
        return []
    cfgs = [init_cfg] if isinstance(init_cfg, dict) else init_cfg
    if not isinstance(cfgs, (list, tuple)) or not all(isinstance(cfg, dict) for cfg in cfgs):
        raise ConfigTypeError(f'init_cfg={init_cfg!r} must be None, a dict or a list of dicts, each with a type')
    for cfg in cfgs:
        if 'type' not in cfg:
            raise ConfigError(f'init_cfg entry {cfg!r} has no type; e.g. dict(type={PRETRAINED!r}, checkpoint=PATH)')
        if cfg['type'] == PRETRAINED and not cfg.get('checkpoint'):
            raise ConfigError(f'init_cfg {cfg!r} names no checkpoint: dict(type={PRETRAINED!r}, checkpoint=PATH)')
    return list(cfgs)


def mmengine_initialize(module: nn.Module, cfgs: List[Dict[str, Any]]) -> None:
    """Run mmengine's initializers ``cfgs`` on ``module``; a ValueError where mmengine cannot be imported."""
    try:
        from mmengine.model import initialize  # lazy: only these init_cfg types need mmengine
    except ImportError as e:
        types = [cfg['type'] if isinstance(cfg['type'], str) else getattr(cfg['type'], '__name__', cfg['type'])
                 for cfg in cfgs]
        raise ConfigError(f'init_cfg type {", ".join(map(str, types))} of {type(module).__name__} needs mmengine\'s '
                          f'initializers, and mmengine cannot be imported ({e}). Without mmengine, init_cfg=None (the '
                          f'default init) and dict(type={PRETRAINED!r}, checkpoint=PATH) work.') from None
    initialize(module, cfgs)


class InitWeightsModule(nn.Module):
    """An ``nn.Module`` with mmengine's ``init_cfg`` / ``is_init`` / ``init_weights`` protocol (module docstring).

    Subclasses define ``load_pretrained`` and, when it is not PyTorch's, ``default_init``.

    Args:
        init_cfg: None, a dict or a list of dicts in mmengine's format (see the module docstring); deep-copied.
            Default: None.
    """

    def __init__(self, init_cfg: InitCfg = None) -> None:
        super().__init__()
        self._is_init = False
        self.init_cfg = copy.deepcopy(init_cfg)

    @property
    def is_init(self) -> bool:
        """Whether ``init_weights`` has run: a parent's (mmengine's) ``init_weights`` then skips this module."""
        return self._is_init

    @is_init.setter
    def is_init(self, value: bool) -> None:
        self._is_init = value

    def init_weights(self) -> None:
        """Initialise the weights as ``init_cfg`` says, once: a second call logs a warning and changes nothing.

        Raises:
            ValueError: ``init_cfg`` names an initializer other than ``Pretrained`` and mmengine cannot be imported,
                or ``Pretrained`` without a checkpoint; the loader's errors for a bad file.
            FileNotFoundError: The checkpoint does not exist (the module stays uninitialised: a retry loads).
        """
        if self._is_init:
            print_log(f'init_weights of {type(self).__name__} has been called more than once; the weights are kept',
                      level=logging.WARNING)
            return
        cfgs = init_cfg_list(self.init_cfg)
        pretrained = [cfg for cfg in cfgs if cfg['type'] == PRETRAINED]
        others = [cfg for cfg in cfgs if cfg['type'] != PRETRAINED]
        if not pretrained:
            self.default_init()
        if others:
            mmengine_initialize(self, others)
        for cfg in pretrained:  # last: what the file holds wins, as with mmengine
            self.load_pretrained(cfg['checkpoint'], prefix=cfg.get('prefix'),
                                 map_location=cfg.get('map_location', 'cpu'))
        self._is_init = True

    def default_init(self) -> None:
        """The init without a ``Pretrained`` init_cfg. Default: PyTorch's layer init, kept as built."""

    def load_pretrained(self, checkpoint: str, prefix: Optional[str] = None,
                        map_location: Union[str, torch.device, None] = 'cpu') -> None:
        """Load the weights of ``checkpoint`` (a ``Pretrained`` init_cfg's ``checkpoint``, ``prefix``,
        ``map_location``)."""
        raise NotImplementedError(f'{type(self).__name__} does not load Pretrained checkpoints')
