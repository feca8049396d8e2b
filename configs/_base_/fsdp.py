"""Train with PyTorch FSDP (fully sharded data parallel) through mmengine's ``FlexibleRunner``: parameters,
gradients and optimizer state are sharded over the ranks instead of copied to each (DDP), for the largest models.

Add it to a config's ``_base_`` list (the V2-H configs do) and train with ``tools/dist_train.sh`` (our
``tools/train.py --launcher pytorch``); ``convnext_dense/engine/strategies/fsdp.py`` says what
``convnext_dense.FSDPStrategy`` adds to mmengine's ``FSDPStrategy``: whole checkpoints gathered on rank 0, FSDP's
gradient clipping, CPU support.
"""
runner_type = 'FlexibleRunner'
strategy = dict(
    type='convnext_dense.FSDPStrategy',
    model_wrapper=dict(
        use_orig_params=True,  # the original parameters stay visible: the layer-decay constructor groups them
        auto_wrap_policy=dict(type='convnext_dense.wrap_convnext_blocks')))  # one FSDP unit per ConvNeXt block
