"""Cascade Mask R-CNN, ConvNeXt-T, ImageNet-1k weights, COCO 3x (published: box AP 50.4, mask AP 43.7): the base."""
_base_ = ['./_base_/cascade_mask_rcnn_convnext.py']
