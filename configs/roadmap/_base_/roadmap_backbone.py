"""The roadmap backbone both roadmap configs put into their model: ``ConvNeXtRoadmap`` at ConvNeXt-T's drop path and
layer scale (the recipe held fixed), the step and the regime to be set with ``--cfg-options``.

Weights: the ImageNet file of the step trained (``ROADMAP_PRETRAINED`` or ``--cfg-options
model.backbone.init_cfg.checkpoint=PATH``); the paper's intermediate models were never released: torchvision's /
mmdet's ResNet-50 fits ``resnet``, the official ``convnext_tiny_1k_224.pth`` (the default) fits
``separate_downsampling``, a file of another step is refused with the key and both shapes.
``model.backbone.init_cfg=None`` trains from scratch.
"""
roadmap_backbone = dict(
    type='convnext_dense.ConvNeXtRoadmap',
    step='separate_downsampling',
    regime='resnet50',
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.4,
    layer_scale_init_value=1.0,  # as the ConvNeXt recipes; pretrained gammas replace it
    init_cfg=dict(type='Pretrained', checkpoint='{{$ROADMAP_PRETRAINED:checkpoints/convnext_tiny_1k_224.pth}}'))
