"""Mask R-CNN, ConvNeXt V2-B, FCMAE weights (``convnextv2_base_1k_224_fcmae.pt``), COCO 3x with large-scale jitter
(published: box AP 52.9, mask AP 46.6; Woo et al., CVPR 2023, Table 6).

The recipe is the base's; layer decay 0.95 and drop path 0.4 are mmdet's reproduction's (the paper swept layer decay
over {0.9, 0.95} and drop path over {0.2, 0.3, 0.4, 0.5} without publishing the choice per size).
"""
_base_ = ['./_base_/mask_rcnn_convnext_v2.py']
