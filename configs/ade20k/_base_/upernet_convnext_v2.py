"""What the ConvNeXt V2 UperNet configs change in the V1 recipe (``upernet_convnext.py`` and a crop base), from the
ConvNeXt V2 paper (Woo et al., CVPR 2023, Appendix A.4 and Table 7): GRN blocks without layer scale, initialised from
the ImageNet fine-tuned files (the paper found them better than the raw FCMAE ones here), and the multi-scale test at
[0.75, 0.875, 1.0, 1.125, 1.25] of the test scale (2048 x 512 for 512 crops, 2560 x 640 for 640 crops).

Each size config lists this file after its crop base and uses ``convnext_v2``, ``v2_paramwise_cfg`` and
``v2_tta_pipelines[crop]``. The paper swept lr {1e-4, 2e-4, 3e-4}, layer decay {0.8, 0.9} and drop path
{0.1, 0.2, 0.3, 0.4} without publishing the choice per size. Our choice, not published: lr 1e-4 and decay rate 0.9
(the V1 recipe's values), layer-wise as in the paper's detection recipe and the official V2 fine-tuning code (the V1
UperNet recipe decays stage-wise), drop path per size in the size configs; AMP for every size (as the V1 B recipe;
GRN's norm is accumulated in float32).
"""
convnext_v2 = dict(use_grn=True, layer_scale_init_value=0.0)
v2_paramwise_cfg = dict(decay_rate=0.9, decay_type='layer_wise')  # num_layers derived: 12
tta_ratios = (0.75, 0.875, 1.0, 1.125, 1.25)
v2_tta_pipelines = {
    crop: [
        dict(type='LoadImageFromFile', backend_args=None),
        dict(type='TestTimeAug', transforms=[
            [dict(type='Resize', scale=(int(4 * crop * r), int(crop * r)), keep_ratio=True) for r in tta_ratios],
            [dict(type='RandomFlip', prob=0.0, direction='horizontal'),
             dict(type='RandomFlip', prob=1.0, direction='horizontal')],
            [dict(type='LoadAnnotations')],
            [dict(type='PackSegInputs')]]),
    ] for crop in (512, 640)}
