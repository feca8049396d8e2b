"""A user's config in a folder of their own: the demo detector (ConvNeXt-atto Cascade Mask R-CNN) inherited by name
from the installed package, set to train two iterations on two images (``run.sh``). Data:
``python -m convnext_dense.synthetic.coco ROOT`` and COCO_DEMO_ROOT=ROOT/."""
_base_ = 'convnext_dense::coco/demo_cascade_convnext.py'

loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(loader, batch_size=1)  # 2 images: 2 iterations
val_dataloader = dict(loader, batch_size=1)
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1))
