"""ADE20K at 512x512 crops (the ImageNet-1k recipes): data, 2 images per GPU, sliding-window test with stride 341.

Data root: ``$ADE20K_ROOT`` or ``data/ade/ADEChallengeData2016`` (ADE20K's own layout).
"""
_base_ = ['./upernet_convnext.py', 'mmseg::_base_/datasets/ade20k.py']
data_root = '{{$ADE20K_ROOT:data/ade/ADEChallengeData2016}}'

crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))

train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))  # x 8 GPUs
val_dataloader = dict(batch_size=1, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
