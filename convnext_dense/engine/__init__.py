"""The OpenMMLab integration (needs mmengine): hooks, loops, the layer-decay optimizer constructor, FSDP, the safe
checkpoint loader for mmengine."""
