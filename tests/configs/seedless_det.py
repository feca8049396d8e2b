"""preempt_det for one epoch without a fixed seed (each start draws the sampler's seed anew), logging the image ids of
each iteration (tests/ddp_probes.ImageIdsHook): a resume that lost the sampler's seed would train the rest of the
interrupted epoch in another order, some images twice and others not at all (tests/test_loops.py)."""
_base_ = ['./preempt_det.py']

custom_hooks = [*_base_.custom_hooks, dict(type='ImageIdsHook')]
train_cfg = dict(max_epochs=1, val_interval=2)  # no validation: the images of training are what is looked at
randomness = dict(seed=None)
