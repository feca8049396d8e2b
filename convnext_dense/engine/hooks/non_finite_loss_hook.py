"""``NonFiniteLossHook``: stop training at the first NaN / inf loss, before a checkpoint of diverged weights."""
import math
from typing import Dict, Optional

import torch
import torch.distributed as dist
from mmengine.device import get_device
from mmengine.hooks import Hook
from torch import Tensor


class NonFiniteLossHook(Hook):
    """Stop training with a ``FloatingPointError`` naming the iteration at the first NaN or infinite loss.

    The check runs after each iteration and before ``CheckpointHook`` (lower priority) could save the diverged
    weights, so the last checkpoint on disk is the last good one. Under DDP the ranks agree through one all-reduce,
    so all of them stop at the same iteration (a NaN on one rank reaches every rank's weights through the gradient
    all-reduce, while the other ranks' losses of that iteration may still be finite). mmdet's ``CheckInvalidLossHook``
    is a bare assert every 50 iterations and mmseg has none, hence this hook.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[Dict[str, Tensor]] = None) -> None:
        # mmengine's parsed losses still hold their graph: detached, torch does not warn about the conversion
        losses = {key: float(value.detach() if isinstance(value, Tensor) else value)
                  for key, value in (outputs or {}).items() if 'loss' in key}
        bad = {key: value for key, value in losses.items() if not math.isfinite(value)}
        flag = torch.tensor([float(bool(bad))], device=get_device())  # NCCL reduces GPU tensors only
        if runner.distributed:
            dist.all_reduce(flag)
        if flag.item() == 0:
            return
        detail = ', '.join(f'{key}={value}' for key, value in bad.items()) or 'on another rank'
        last = runner.message_hub.get_info('last_ckpt')
        kept = f'the last checkpoint, {last}, is kept' if last else 'no checkpoint had been written yet'
        raise FloatingPointError(f'non-finite loss at iteration {runner.iter + 1}: {detail}; training stopped and '
                                 f'{kept}. Lower the learning rate, clip gradients (optim_wrapper.clip_grad) or check '
                                 'the data and the loss weights')
