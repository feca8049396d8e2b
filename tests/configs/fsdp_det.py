"""preempt_det trained with FSDP (configs/_base_/fsdp.py): the same probes, the same recipe."""
_base_ = ['./preempt_det.py', '../../configs/_base_/fsdp.py']
