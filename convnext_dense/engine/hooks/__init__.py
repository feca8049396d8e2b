"""The reliability hooks, one module each (as mmdet's ``engine/hooks``). ``RELIABILITY_HOOKS`` is their list, in the
order ``configs/_base_/reliability_hooks.py`` declares them (its ``checkpoint_hook``, then ``reliability_hooks``)."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checkpoint_fit_hook import CheckpointFitHook
from .dataset_check_hook import DatasetCheckHook
from .exact_resume_hook import ExactResumeHook
from .non_finite_loss_hook import NonFiniteLossHook
from .preemption_hook import PreemptionHook
from .watchdog_hook import WatchdogHook

RELIABILITY_HOOKS = (AtomicCheckpointHook, DatasetCheckHook, NonFiniteLossHook, CheckpointFitHook, ExactResumeHook,
                     PreemptionHook, WatchdogHook)

__all__ = [hook.__name__ for hook in RELIABILITY_HOOKS] + ['RELIABILITY_HOOKS']
