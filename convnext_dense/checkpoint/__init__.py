"""ConvNeXt checkpoints in plain PyTorch: safe reading (``reader``), the layouts of the common files (``layouts``),
what a file's tensors must be to load (``checks``), loading into the backbone with a report (``loading``), whether
a whole-model file fits a model (``fit``). mmengine's loader is given these in ``convnext_dense.engine``."""
from .layouts import LAYOUTS, OFFICIAL_CHECKPOINTS, OFFICIAL_URL, Layout
from .loading import LoadReport, load_backbone_checkpoint, map_state_dict
from .reader import read_checkpoint

__all__ = ['LAYOUTS', 'OFFICIAL_CHECKPOINTS', 'OFFICIAL_URL', 'Layout', 'LoadReport', 'load_backbone_checkpoint',
           'map_state_dict', 'read_checkpoint']
