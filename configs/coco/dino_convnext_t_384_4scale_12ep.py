"""DINO-4scale + ConvNeXt-T, ImageNet-22k -> 1k 384 px weights, COCO 12 epochs
(published: box AP 52.4, detrex's ``projects/dino/README.md``, from
``projects/dino/configs/dino-convnext/dino_convnext_tiny_384_4scale_12ep.py``).
"""
_base_ = ['./_base_/dino_convnext.py']
