"""Template: UperNet + ConvNeXt-T fine-tuned on your own segmentation dataset in the ADE20K layout. Copy this file and
edit the block below: the data root, the folders, the class names and their colours are set here once, and both
heads and the datasets follow.

Your data: images (``.jpg``) and label maps (``.png``, one class index per pixel, same file names) in the folders
below. ``reduce_zero_label=True`` is ADE20K's convention (0 is "other", ignored; 1 is the first class); with label
maps whose 0 is your first class, set it to False. Another segmentation recipe: change ``_base_``. Before the first
iteration the run checks the paths, the palette length and that both heads fit the classes; each batch's label maps
are checked against the class count. See the README, "Train on your own data".
"""
_base_ = ['../ade20k/upernet_convnext_t_512.py']
from convnext_dense.class_checks import fit_classes  # noqa: E402  (after _base_: mmengine reads a plain config)

# ---- your data ---------------------------------------------------------------------------------------------------
data_root = '{{$DATA_ROOT:data/my_seg}}'  # DATA_ROOT moves it
train_images, train_labels = 'images/training', 'annotations/training'  # relative to data_root
val_images, val_labels = 'images/validation', 'annotations/validation'
classes = ('road', 'building', 'sky')  # in the order of the label values
palette = [(128, 64, 128), (70, 70, 70), (70, 130, 180)]  # one colour per class, for drawing
reduce_zero_label = True
# ------------------------------------------------------------------------------------------------------------------

metainfo = dict(classes=classes, palette=palette)
model = fit_classes(_base_.model, metainfo)  # decode and auxiliary heads: num_classes = len(classes)
dataset = dict(type='BaseSegDataset',  # ADE20KDataset fixes its 150 class names
               data_root=data_root, metainfo=metainfo, img_suffix='.jpg', seg_map_suffix='.png',
               reduce_zero_label=reduce_zero_label)


def _with_labels(pipeline):
    """The base pipeline with this dataset's label convention."""
    return [dict(step, reduce_zero_label=reduce_zero_label) if step['type'] == 'LoadAnnotations' else step
            for step in pipeline]


train_dataloader = dict(dataset=dict(dataset, data_prefix=dict(img_path=train_images, seg_map_path=train_labels),
                                     pipeline=_with_labels(_base_.train_dataloader.dataset.pipeline)))
val_dataloader = dict(dataset=dict(dataset, data_prefix=dict(img_path=val_images, seg_map_path=val_labels),
                                   pipeline=_with_labels(_base_.val_dataloader.dataset.pipeline)))
test_dataloader = val_dataloader
