"""What the shrunk Mask2Former test configs (``tiny_m2f_{seg,ins,pan}.py``) share: ConvNeXt-atto from scratch and a
32-channel head with 8 queries, one pixel-decoder layer and two decoder layers (the recipes: 256 channels, 100
queries, 6 and 9 layers). Variables only, so a config can list it next to its recipe in ``_base_``."""
m2f_width = 32
m2f_backbone = dict(arch='atto', drop_path_rate=0.0, init_cfg=None)
m2f_in_channels = [40, 80, 160, 320]  # atto's output_shape (the tests check it)
m2f_head = dict(
    in_channels=m2f_in_channels, feat_channels=m2f_width, out_channels=m2f_width, num_queries=8,
    pixel_decoder=dict(encoder=dict(num_layers=1, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=m2f_width, num_heads=2),
        ffn_cfg=dict(embed_dims=m2f_width, feedforward_channels=2 * m2f_width))),
        positional_encoding=dict(num_feats=m2f_width // 2)),
    positional_encoding=dict(num_feats=m2f_width // 2),
    transformer_decoder=dict(num_layers=2, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=m2f_width, num_heads=2), cross_attn_cfg=dict(embed_dims=m2f_width, num_heads=2),
        ffn_cfg=dict(embed_dims=m2f_width, feedforward_channels=2 * m2f_width))))
m2f_num_points = 256  # points sampled per mask for the losses (the recipes: 12544, for 1024 px images)
m2f_size = (64, 64)
m2f_iters = 2  # no validation while training: tools/test.py evaluates the checkpoint
m2f_loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
randomness = dict(seed=0)  # a run is the same every time (what the tests see of a 2-iteration model)
