"""What every convnext_dense config runs with, whichever tool builds the Runner from it (ours, mmdet's and mmseg's
``tools/train.py`` / ``tools/test.py``, ``mim train``, ``Runner.from_cfg``); see
``convnext_dense/engine/hooks/`` (one module per hook).

* ``convnext_dense.AtomicCheckpointHook`` (``checkpoint_hook``, which each toolkit base puts in its
  ``default_hooks.checkpoint``): a kill at any moment leaves ``last_checkpoint`` naming a complete file.
* ``convnext_dense.DatasetCheckHook``: bad data (a missing or truncated image, an unknown category id, a label
  above the class count) fails at start-up with one line naming the file and the value.
* ``convnext_dense.NonFiniteLossHook``: training stops at the first NaN / inf loss, before a checkpoint of the
  diverged weights is written.
* ``convnext_dense.CheckpointFitHook``: a ``load_from`` / ``--resume`` / test checkpoint of another model or another
  arch is refused instead of loading with warnings.

* ``convnext_dense.ExactResumeHook``: ``--resume`` from a checkpoint written inside an epoch continues at the next
  batch (the used ones skipped unloaded) with the checkpoint's random states; an iteration-based run resumes with
  the checkpoint's sampler seed, so that mmengine's replay of the trained batches and the training after it follow
  the run's order (``convnext_dense/engine/hooks/exact_resume_hook.py``).
* ``convnext_dense.PreemptionHook``: SIGTERM / SIGUSR1 end the run after the current iteration with a checkpoint of
  it and exit code 75 (``convnext_dense/engine/hooks/preemption_hook.py``).
* ``convnext_dense.WatchdogHook``: a rank that finishes no iteration within ``watchdog_timeout`` seconds ends the job
  with one line naming it (``convnext_dense/engine/hooks/watchdog_hook.py``; 0 turns it off).

The loops (``convnext_dense/engine/loops.py``) are mmengine's, but hand each loader config to ``DatasetCheckHook``
before building it (a missing data root is our one line, not a pycocotools traceback) and, for epoch-based training,
build a batch sampler that lets ``ExactResumeHook`` skip the batches a resumed epoch already trained (for
iteration-based training, restart their data with the checkpoint's sampler seed). The stock
schedules define ``train_cfg``, ``val_cfg`` and ``test_cfg`` already (mmengine refuses a key set by two bases), so
each config that inherits a schedule sets them in its body, as ``default_hooks.checkpoint``:
``train_cfg = dict(type=_base_.epoch_train_loop)`` (or ``iter_train_loop``, matching the schedule's loop),
``val_cfg = dict(type=_base_.val_loop)``, ``test_cfg = dict(type=_base_.test_loop)``. A config with other loops
still runs; ``DatasetCheckHook`` then warns that the checks before building are off.

``reliability.py`` puts ``reliability_hooks`` into ``custom_hooks``. A config whose other base also has
``custom_hooks`` (mmengine refuses the same key in two bases; e.g. mmdet's RTMDet) lists this file instead and sets
``custom_hooks = [*its hooks, *_base_.reliability_hooks]``. The toolkit bases import ``convnext_dense``
(``custom_imports``), which registers the hooks.
"""
checkpoint_hook = dict(type='convnext_dense.AtomicCheckpointHook')
epoch_train_loop = 'convnext_dense.CheckedEpochBasedTrainLoop'  # schedules with EpochBasedTrainLoop (mmdet's)
iter_train_loop = 'convnext_dense.CheckedIterBasedTrainLoop'  # with IterBasedTrainLoop (mmseg's, Mask2Former's)
val_loop = 'convnext_dense.CheckedValLoop'
test_loop = 'convnext_dense.CheckedTestLoop'
reliability_hooks = [
    dict(type='convnext_dense.DatasetCheckHook'),
    dict(type='convnext_dense.NonFiniteLossHook'),
    dict(type='convnext_dense.CheckpointFitHook'),
    dict(type='convnext_dense.ExactResumeHook'),
    dict(type='convnext_dense.PreemptionHook'),
    dict(type='convnext_dense.WatchdogHook'),
]
# watchdog_timeout = SECONDS in a config (or --cfg-options watchdog_timeout=...) overrides the watchdog's 600 s
# without a finished iteration on a rank; 0 turns it off
# strict_annotations = True in a config (or --cfg-options strict_annotations=True) makes the annotations mmdet would
# leave out (boxes outside their image, under 1 px; masks without a polygon of 3 points) an error of DatasetCheckHook
# instead of a warning
