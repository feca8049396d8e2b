"""DINO-4scale + DINOv3 ConvNeXt-L (LVD-1689M), COCO 12 epochs: the ImageNet-22k recipe of the same size
(``dino_convnext_l_384_4scale_12ep.py``, detrex's) with DINOv3's weights. Accuracy not published, not measured.

Deviations from that recipe: the weights only (Meta's DINOv3 file under ``checkpoints/``, or
``$CONVNEXT_PRETRAINED``, e.g. timm's ungated copy ``hf://timm/convnext_large.dinov3_lvd1689m`` with the ``hf``
extra). The neck reads stages 1-3 through norm1..3; norm3 starts from DINOv3's final norm (the loader's report says
so), norm1 and norm2 at init. Backbone lr x 0.1, no layer decay, drop path 0 and the schedule are detrex's for the
ImageNet weights, untuned for these.
"""
_base_ = ['./dino_convnext_l_384_4scale_12ep.py']

model = dict(backbone=dict(init_cfg=dict(
    checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/dinov3_convnext_large_pretrain_lvd1689m-61fa432d.pth}}')))
