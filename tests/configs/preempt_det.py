"""tiny_det for 3 epochs with a checkpoint each, plus the signal, pause and state-bytes probes of tests/ddp_probes.py
(the shipped hooks stay)."""
_base_ = ['./tiny_det.py']

custom_imports = dict(imports=['convnext_dense', 'ddp_probes'], allow_failed_imports=False)
custom_hooks = [*_base_.custom_hooks, dict(type='SignalHook'), dict(type='PauseHook'), dict(type='StateBytesHook')]
train_cfg = dict(max_epochs=3, val_interval=3)
default_hooks = dict(checkpoint=dict(interval=1))
