"""tiny_det for 3 epochs with a checkpoint at the end (and where a signal stops a run), plus the signal, pause and
state-bytes probes of tests/ddp_probes.py (the shipped hooks stay)."""
_base_ = ['./tiny_det.py']

custom_imports = dict(imports=['convnext_dense', 'ddp_probes'], allow_failed_imports=False)
custom_hooks = [*_base_.custom_hooks, dict(type='SignalHook'), dict(type='PauseHook'), dict(type='StateBytesHook')]
train_cfg = dict(max_epochs=3, val_interval=3)
default_hooks = dict(checkpoint=dict(interval=3))  # each checkpoint costs a config dump: only those the tests read
