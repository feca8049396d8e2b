"""What the Mask2Former + ConvNeXt recipes change in mmdet's / mmseg's stock Swin recipes besides the backbone size.

Each recipe (``configs/ade20k/mask2former_convnext_*.py``, ``configs/coco/mask2former_convnext_*.py``) inherits its
stock Swin file and this one, then swaps in ``convnext_backbone`` at the paired size, the head's ``in_channels`` from
``output_shape``, ``convnext_paramwise_cfg`` under our constructor, the data root and the checkpoint hook.

Backbone settings (the decision the stock ``paramwise_cfg`` asks for): the *equivalent* of the Swin recipes, not
layer decay on top. Mask2Former's recipes give every backbone, ResNet and Swin alike, one lr multiplier of 0.1 and no
weight decay on its norms and position tables; no layer-decay value for ConvNeXt + Mask2Former has been published, so
adding one would be a tuning of ours, and keeping the stock multiplier leaves the backbone as the only change against
the Swin results. Hence ``decay_rate=1.0`` (every backbone layer at scale 1), ``'backbone'`` ``lr_mult=0.1``, and
our constructor's official ConvNeXt rule inside the backbone: no weight decay on 1-D parameters and biases (norms and
layer scales: ConvNeXt has no position tables; its biases are not decayed either, where Swin's qkv / MLP biases are).
Outside the backbone ``outside_backbone='mmengine'`` gives the head exactly what the stock recipe does through
mmengine's default constructor: lr 1x; no decay on norms (``norm_decay_mult=0``) nor on ``query_embed``,
``query_feat``, ``level_embed``; weight decay 0.05 on the rest, biases included. To try layer decay instead, set
``decay_rate`` / ``decay_type`` and drop the ``'backbone'`` key.

Drop path 0.3 is the stock recipes' value for every Swin size (ConvNeXt's own dense recipes tune it per size for
other heads; there is no Mask2Former tuning to copy). ``with_cp`` stays off as in the stock files.
"""
_base_ = ['./reliability.py']

convnext_backbone = dict(
    type='convnext_dense.ConvNeXt',
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.3,  # the stock Swin recipes' value
    layer_scale_init_value=1.0)  # as in ConvNeXt's dense configs; the pretrained gammas replace it

convnext_query_multi = dict(lr_mult=1.0, decay_mult=0.0)  # the stock embed_multi
convnext_paramwise_cfg = dict(
    decay_rate=1.0,
    outside_backbone='mmengine',
    norm_decay_mult=0.0,
    custom_keys={
        'backbone': dict(lr_mult=0.1, decay_mult=1.0),
        'query_embed': convnext_query_multi,
        'query_feat': convnext_query_multi,
        'level_embed': convnext_query_multi,
    })
