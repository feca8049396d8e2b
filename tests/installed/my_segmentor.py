"""A user's segmentation config in a folder of their own: the UperNet demo inherited by name from the installed
package, set to train two iterations (``run.sh``). Data: ``python -m convnext_dense.synthetic.ade ROOT`` and
ADE_DEMO_ROOT=ROOT."""
_base_ = 'convnext_dense::ade20k/demo_upernet_convnext.py'

loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(loader, batch_size=2)  # the pooling branch's BatchNorm needs more than one image
val_dataloader = dict(loader, batch_size=1)
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1))
