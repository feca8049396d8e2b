"""tiny_det under DDP with a frozen stem + stages 0 and 1, plus the probes of tests/ddp_probes.py."""
_base_ = ['./tiny_det.py']

custom_imports = dict(imports=['convnext_dense', 'ddp_probes'], allow_failed_imports=False)
custom_hooks = [*_base_.custom_hooks, dict(type='DumpParamsHook')]  # the shipped hooks stay
model = dict(backbone=dict(frozen_stages=1))
val_evaluator = [_base_.val_evaluator, dict(type='SamplesPerRankMetric')]
