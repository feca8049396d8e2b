"""The run-time guarantees of ``reliability_hooks.py`` as a config's ``custom_hooks``: what every shipped config
inherits, whichever tool builds the Runner from it.

A config that sets its own ``custom_hooks`` keeps these with ``custom_hooks = [*_base_.custom_hooks, ...]``.
"""
_base_ = ['./reliability_hooks.py']
custom_hooks = _base_.reliability_hooks
