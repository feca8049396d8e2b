"""What every convnext_dense config runs with, whichever tool builds the Runner from it (ours, mmdet's and mmseg's
``tools/train.py`` / ``tools/test.py``, ``mim train``, ``Runner.from_cfg``); see ``convnext_dense/hooks.py``.

* ``convnext_dense.AtomicCheckpointHook`` (``checkpoint_hook``, which each toolkit base puts in its
  ``default_hooks.checkpoint``): a kill at any moment leaves ``last_checkpoint`` naming a complete file.
* ``convnext_dense.DatasetCheckHook``: bad data (a missing or truncated image, an unknown category id, a label
  above the class count) fails at start-up with one line naming the file and the value.
* ``convnext_dense.NonFiniteLossHook``: training stops at the first NaN / inf loss, before a checkpoint of the
  diverged weights is written.
* ``convnext_dense.CheckpointFitHook``: a ``load_from`` / ``--resume`` / test checkpoint of another model or another
  arch is refused instead of loading with warnings.

``reliability.py`` puts ``reliability_hooks`` into ``custom_hooks``. A config whose other base also has
``custom_hooks`` (mmengine refuses the same key in two bases; e.g. mmdet's RTMDet) lists this file instead and sets
``custom_hooks = [*its hooks, *_base_.reliability_hooks]``. The toolkit bases import ``convnext_dense``
(``custom_imports``), which registers the hooks.
"""
checkpoint_hook = dict(type='convnext_dense.AtomicCheckpointHook')
reliability_hooks = [
    dict(type='convnext_dense.DatasetCheckHook'),
    dict(type='convnext_dense.NonFiniteLossHook'),
    dict(type='convnext_dense.CheckpointFitHook'),
]
