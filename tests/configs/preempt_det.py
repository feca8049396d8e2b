"""tiny_det for 3 epochs with a checkpoint each, plus the signal and pause probes of tests/ddp_probes.py."""
_base_ = ['./tiny_det.py']

custom_imports = dict(imports=['convnext_dense', 'ddp_probes'], allow_failed_imports=False)
custom_hooks = [*_base_.custom_hooks, dict(type='SignalHook'), dict(type='PauseHook')]  # the shipped hooks stay
train_cfg = dict(max_epochs=3, val_interval=3)
default_hooks = dict(checkpoint=dict(interval=1))
