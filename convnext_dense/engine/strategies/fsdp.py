"""FSDP for the largest models: mmengine's ``FSDPStrategy`` with what a ConvNeXt detector needs of it.

V2-H Mask R-CNN has 679M parameters: weights, gradients and AdamW state alone are about 11 GB per GPU under DDP.
``configs/_base_/fsdp.py`` trains through mmengine's ``FlexibleRunner`` with ``FSDPStrategy`` below, which shards
them over the ranks. What it changes in mmengine's (0.10) strategy:

* checkpoints are whole files gathered on rank 0, read by every tool, ``load_from`` and ``--resume``: an explicit
  ``FullStateDictConfig(offload_to_cpu=False, rank0_only=True)`` (mmengine's ``state_dict_cfg='full'`` offloads to
  the CPU, which crashed rank 0 with SIGSEGV on CPU/gloo); mmengine's default is one sharded file per rank;
* gradient clipping by norm uses FSDP's own ``clip_grad_norm_``, which reduces the norm over the shards (mmengine's
  ``torch.nn.utils.clip_grad_norm_`` sees only the local shard, so each rank would clip with another norm);
* on CPU (tests, gloo): FSDP's ``device_id`` is the CPU (mmengine passes ``LOCAL_RANK``), and the process group is
  created without mmengine's ``init_dist``, which calls ``torch.cuda.set_device``;
* the optimizer (our layer-decay groups) is built on the model before it is sharded, where every parameter still has
  its shape (weight decay depends on it: FSDP's flat shards are all 1-D), and rebuilt over the shards by name
  (mmengine's own path for that fails with torch 2.x);
* ``wrap_convnext_blocks`` (``auto_wrap_policy``): each ConvNeXt block its own FSDP unit, so only one block's full
  parameters exist at a time in forward and backward.

The layer-decay groups need the original parameters: ``use_orig_params=True`` in ``configs/_base_/fsdp.py``.
"""
import copy
import inspect
from functools import partial
from typing import Dict, Optional

import torch
import torch.distributed as dist
from mmengine._strategy import FSDPStrategy as MMEngineFSDPStrategy
from mmengine.dist import is_distributed
from mmengine.optim import BaseOptimWrapper
from torch import nn
from torch.distributed.fsdp import (
    FullOptimStateDictConfig,
    FullStateDictConfig,
    FullyShardedDataParallel,
    StateDictType,
)
from torch.optim import Optimizer

from ...models.layers import ConvNeXtBlock
from ...utils.errors import ConfigError

# whole checkpoints on rank 0, gathered without the CPU offload
WHOLE_ON_RANK0 = dict(
    state_dict_type=StateDictType.FULL_STATE_DICT,
    state_dict_config=FullStateDictConfig(offload_to_cpu=False, rank0_only=True),
    optim_state_dict_config=FullOptimStateDictConfig(offload_to_cpu=False, rank0_only=True))


def is_fsdp(model: nn.Module) -> bool:
    return isinstance(model, FullyShardedDataParallel)


def unsharded(runner) -> nn.Module:
    """The FSDP runner's model as it was before sharding, on the meta device: the shapes, no memory (the FSDP
    model's own parameters are 1-D shards)."""
    skeleton = getattr(runner.strategy, 'skeleton', None)
    if skeleton is None:
        raise ConfigError(f"strategy={type(runner.strategy).__name__}: train with strategy type "
                          "'convnext_dense.FSDPStrategy' (configs/_base_/fsdp.py), which keeps what a loaded "
                          'checkpoint is checked against')
    return skeleton


def wrap_convnext_blocks(module: nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
    """FSDP ``auto_wrap_policy``: every ``ConvNeXtBlock`` is an FSDP unit; the rest belongs to the root unit."""
    return True if recurse else isinstance(module, ConvNeXtBlock)


def _clip_sharded(root: nn.Module, params, max_norm: float, norm_type: float = 2.0, **kwargs) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_``'s signature, FSDP's norm over all shards (``params`` are the root's)."""
    return root.clip_grad_norm_(max_norm, norm_type)


class FSDPStrategy(MMEngineFSDPStrategy):
    """mmengine's ``FSDPStrategy`` (same arguments) with whole checkpoints on rank 0, FSDP's gradient clipping and
    CPU support; see the module's docstring.

    Args:
        state_dict_cfg: mmengine's argument; default ``WHOLE_ON_RANK0`` instead of mmengine's 'local'.
        **kwargs: mmengine's ``FSDPStrategy`` arguments.
    """

    def __init__(self, *, state_dict_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(state_dict_cfg=dict(WHOLE_ON_RANK0) if state_dict_cfg is None else state_dict_cfg,
                         **kwargs)

    def _setup_distributed(self, launcher: str = 'pytorch', backend: str = 'nccl', **kwargs) -> None:
        if not torch.cuda.is_available() and not is_distributed() and launcher == 'pytorch':
            dist.init_process_group(backend='gloo')  # torchrun's env:// variables; init_dist would pin a GPU
        super()._setup_distributed(launcher, backend, **kwargs)

    def build_model(self, model):
        model = super().build_model(model)
        # a copy on the meta device, before sharding: the same modules and shapes, no memory
        memo = {id(t): torch.empty_like(t, device='meta') for t in (*model.parameters(), *model.buffers())}
        self.skeleton = copy.deepcopy(model, memo)
        return model

    def prepare(self, model, *, optim_wrapper=None, **kwargs):
        self._optim_cfg = optim_wrapper
        return super().prepare(model, optim_wrapper=optim_wrapper, **kwargs)

    def _wrap_model(self, model: nn.Module) -> nn.Module:
        cfg = getattr(self, '_optim_cfg', None)
        if isinstance(cfg, dict):  # built here, on the parameters with their shapes; build_optim_wrapper shards it
            self._optim_cfg = super().build_optim_wrapper(copy.deepcopy(cfg), model)
        if not torch.cuda.is_available():
            self.model_wrapper = dict(self.model_wrapper or dict(type='MMFullyShardedDataParallel'),
                                      device_id=torch.device('cpu'))
        return super()._wrap_model(model)

    def load_optim_state_dict(self, state_dict: dict) -> None:
        # mmengine passes FSDP.optim_state_dict_to_load its arguments in an order torch 2.x does not take
        self.optim_wrapper.load_state_dict(
            FullyShardedDataParallel.optim_state_dict_to_load(self.model, self.optim_wrapper.optimizer, state_dict))

    def build_optim_wrapper(self, optim_wrapper, model: Optional[nn.Module] = None):
        if isinstance(getattr(self, '_optim_cfg', None), BaseOptimWrapper):
            optim_wrapper, self._optim_cfg = self._optim_cfg, None
            optim_wrapper.optimizer = _over_shards(optim_wrapper.optimizer, self.id_to_name, model)
        else:
            optim_wrapper = super().build_optim_wrapper(optim_wrapper, model)
        if getattr(optim_wrapper, 'clip_func', None) is torch.nn.utils.clip_grad_norm_:
            optim_wrapper.clip_func = partial(_clip_sharded, model)
        return optim_wrapper


def _over_shards(optimizer: Optimizer, id_to_name: Dict[int, str], model: nn.Module) -> Optimizer:
    """The same (fresh) optimizer, its groups and their options over the FSDP model's parameters of the same names.

    mmengine's own path for this passes torch's ``FSDP.optim_state_dict_to_load`` its arguments in an order torch 2.x
    does not take, and re-creates the optimizer with defaults its class refuses (AdamW's 'decoupled_weight_decay').
    """
    sharded = {name.replace('_fsdp_wrapped_module.', ''): p for name, p in model.named_parameters()}
    groups = [dict(group, params=[sharded[id_to_name[id(p)]] for p in group['params']])
              for group in optimizer.param_groups]
    accepted = inspect.signature(type(optimizer).__init__).parameters
    return type(optimizer)(groups, **{k: v for k, v in optimizer.defaults.items() if k in accepted})
