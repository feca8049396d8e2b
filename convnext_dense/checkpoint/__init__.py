"""ConvNeXt checkpoints: safe reading (``reader``), the layouts of the common files (``layouts``), what a file's
tensors must be to load (``checks``), loading into the backbone with a report (``loading``), and mmengine's
local-file loader (``mmengine_scheme``)."""
from .layouts import LAYOUTS, OFFICIAL_CHECKPOINTS, OFFICIAL_URL, Layout
from .loading import LoadReport, load_backbone_checkpoint, map_state_dict
from .mmengine_scheme import install_safe_checkpoint_loader, uninstall_safe_checkpoint_loader
from .reader import read_checkpoint

__all__ = ['LAYOUTS', 'OFFICIAL_CHECKPOINTS', 'OFFICIAL_URL', 'Layout', 'LoadReport', 'install_safe_checkpoint_loader',
           'load_backbone_checkpoint', 'map_state_dict', 'read_checkpoint', 'uninstall_safe_checkpoint_loader']
