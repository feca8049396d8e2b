"""UperNet + DINOv3 ConvNeXt-L (LVD-1689M), ADE20K 640x640, 160k iterations: the ImageNet-22k recipe of the same size
(``upernet_convnext_l_640_in22k.py``) with DINOv3's weights. Accuracy not published, not measured.

Deviations from that recipe: the weights (Meta's DINOv3 file under ``checkpoints/``, or ``$CONVNEXT_PRETRAINED``,
e.g. timm's ungated copy ``hf://timm/convnext_large.dinov3_lvd1689m`` with the ``hf`` extra), and with them the
stage-3 output norm, which starts from DINOv3's final norm (the loader's report says so) instead of weight 1, bias 0;
norm0..2 start at init as in the recipe. Drop path, layer decay, lr, schedule and crops are the recipe's, untuned for
these weights.
"""
_base_ = ['./upernet_convnext_l_640_in22k.py']

model = dict(backbone=dict(init_cfg=dict(
    checkpoint='{{$CONVNEXT_PRETRAINED:checkpoints/dinov3_convnext_large_pretrain_lvd1689m-61fa432d.pth}}')))
