"""Cascade Mask R-CNN + DINOv3 ConvNeXt-B (LVD-1689M), COCO 3x: the ImageNet-22k recipe of the same size
(``cascade_convnext_b_in22k.py``) with DINOv3's weights. Accuracy not published, not measured.

Deviations from that recipe: the weights only (Meta's DINOv3 file under ``checkpoints/``, or
``$CONVNEXT_PRETRAINED``, e.g. timm's ungated copy ``hf://timm/convnext_base.dinov3_lvd1689m`` with the ``hf``
extra). The FPN reads the four stages through norm0..3; norm3 starts from DINOv3's final norm (the loader's report
says so), norm0..2 at init as in the recipe. Drop path, layer decay, lr and schedule are the recipe's, untuned for
these weights.
"""
_base_ = ['./cascade_convnext_b_in22k.py']

model = dict(backbone=dict(init_cfg=dict(
    checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/dinov3_convnext_base_pretrain_lvd1689m-801f2ba9.pth}}')))
