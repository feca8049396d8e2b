"""Template: Cascade Mask R-CNN + ConvNeXt-T fine-tuned on your own COCO-format dataset. Copy this file and edit the
block below: the data root, the annotation files, the image folders and the class names are set here once, and every
head, the datasets and the evaluator follow.

Your data: one COCO-format JSON per split (``images``, ``annotations`` with boxes and polygon / RLE masks,
``categories``) and a folder of images per split. Category ids may be any integers; the class names below are matched
with the ``name`` of each category (annotations of categories not listed are left out, as mmdet does). Another
detection recipe: change ``_base_`` (e.g. to ``../coco/mask_rcnn_convnext_t.py`` or, from an installed package,
``convnext_dense::coco/cascade_convnext_b_in22k.py``). Before the first iteration the run checks that the paths
exist and that every head fits the classes (``convnext_dense.class_checks``). See the README, "Train on your own data".
"""
_base_ = ['../coco/cascade_convnext_t.py']
from convnext_dense.class_checks import fit_classes  # noqa: E402  (after _base_: mmengine reads a plain config)

# ---- your data ---------------------------------------------------------------------------------------------------
data_root = '{{$DATA_ROOT:data/my_coco/}}'  # with a trailing slash; DATA_ROOT moves it
train_ann, train_images = 'annotations/train.json', 'train/'  # relative to data_root
val_ann, val_images = 'annotations/val.json', 'val/'
classes = ('person', 'bicycle', 'car')  # your category names
# ------------------------------------------------------------------------------------------------------------------

metainfo = dict(classes=classes)
model = fit_classes(_base_.model, metainfo)  # the three box heads and the mask head: num_classes = len(classes)
train_dataloader = dict(dataset=dict(data_root=data_root, ann_file=train_ann, data_prefix=dict(img=train_images),
                                     metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, ann_file=val_ann, data_prefix=dict(img=val_images),
                                   metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann)
test_evaluator = val_evaluator
