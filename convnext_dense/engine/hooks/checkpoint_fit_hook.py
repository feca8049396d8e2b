"""``CheckpointFitHook``: refuse a ``load_from`` / resume / test checkpoint that does not fit the model."""
from mmengine.hooks import Hook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner import find_latest_checkpoint

from ...checkpoint.fit import check_checkpoint_fits, name_heads_as_model
from ..strategies.fsdp import is_fsdp, unsharded


class CheckpointFitHook(Hook):
    """Refuse a checkpoint that does not fit the model, before mmengine loads it with warnings only.

    mmengine loads ``load_from`` (and ``tools/test.py``'s checkpoint) non-strictly: a file of another model loads
    nothing and only logs warnings, and a backbone of another arch is skipped tensor by tensor. This raises a
    ``CheckpointError`` (a ``ValueError``) naming the file when no tensor mmengine would load fits, or when the file's
    ConvNeXt backbone is of another arch (a tensor of another shape, or stages of other depths; both archs are
    named). Heads that differ (fine-tuning to other classes) stay mmengine's warnings. A
    Mask2Former head saved under the other toolkit's name (a transformers file loaded into mmseg's semantic recipe)
    is first renamed to the model's (``name_heads_as_model``).
    """

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # the wrapped model of a DDP wrapper or a test-time-augmentation model; FSDP's (1-D shards): its shapes
        wrapped = is_model_wrapper(runner.model) or isinstance(runner.model, BaseTTAModel)
        model = unsharded(runner) if is_fsdp(runner.model) else runner.model.module if wrapped else runner.model
        # the file being loaded: load_from (also --resume CKPT and the test checkpoint), else the auto-resumed one
        source = runner.cfg.get('load_from') or find_latest_checkpoint(runner.work_dir)
        name_heads_as_model(model, checkpoint)  # mmengine loads the checkpoint after this hook
        check_checkpoint_fits(model, checkpoint, source)
