"""tiny_seg under DDP with a frozen stem + stage 0 and three of four stages returned (stage 3 is not built), plus
the probes of tests/ddp_probes.py (PauseHook does nothing unless its environment variables are set)."""
_base_ = ['./tiny_seg.py']

custom_imports = dict(imports=['convnext_dense', 'ddp_probes'], allow_failed_imports=False)
custom_hooks = [*_base_.custom_hooks, dict(type='DumpParamsHook'), dict(type='PauseHook')]  # the shipped hooks stay
model = dict(
    backbone=dict(frozen_stages=0, out_indices=(0, 1, 2)),
    decode_head=dict(in_channels=[8, 16, 24], in_index=[0, 1, 2]))
val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']), dict(type='SamplesPerRankMetric')]
