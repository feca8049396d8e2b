"""mmengine training strategies: FSDP for ConvNeXt."""
