"""What a user's script does: parse a config that inherits convnext_dense:: by name, build the Runner, train."""
import sys

from mmengine.config import Config
from mmengine.runner import Runner

cfg = Config.fromfile(sys.argv[1])
cfg.work_dir = sys.argv[2]
Runner.from_cfg(cfg).train()
