"""tiny_seg, iteration-based, without a fixed seed (each start draws the sampler's seed anew): 12 iterations of 2
images over 8 training images, a checkpoint every 5, logging the image names of each iteration
(tests/ddp_probes.ImageIdsHook). mmengine replays the batches a resumed run has trained; a resume that lost the
sampler's seed would replay, and then train, another order (tests/test_loops.py)."""
_base_ = ['./tiny_seg.py']

custom_imports = dict(imports=['convnext_dense', 'ddp_probes'], allow_failed_imports=False)
custom_hooks = [*_base_.custom_hooks, dict(type='ImageIdsHook')]
# a persistent loader worker, as the recipes have: it asks the sampler for indices when the loop is built, before
# the checkpoint is loaded
train_dataloader = dict(num_workers=1, persistent_workers=True)
max_iters = 12
param_scheduler = [dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=-1, save_last=False))
randomness = dict(seed=None)
