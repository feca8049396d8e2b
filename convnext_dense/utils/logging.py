"""``print_log``: mmengine's (the runner's log) where mmengine is installed, else the ``convnext_dense`` logger.

The model core logs what a checkpoint load did; inside an OpenMMLab run that belongs in the run's log, and without
OpenMMLab it goes to Python's ``logging`` (``logging.getLogger('convnext_dense')``).
"""
import logging

LOGGER = logging.getLogger('convnext_dense')


def print_log(msg: str, logger: str = 'current', level: int = logging.INFO) -> None:
    """Log ``msg`` to mmengine's ``logger`` (default: the current run's) or, without mmengine, to ``LOGGER``."""
    try:
        from mmengine.logging import print_log as mmengine_print_log
    except ImportError:
        LOGGER.log(level, msg)
        return
    mmengine_print_log(msg, logger=logger, level=level)
