"""Moved to ``convnext_dense.datasets.class_checks``; this name stays for the own-data configs users copied
(``from convnext_dense.class_checks import fit_classes``)."""
from .datasets.class_checks import *  # noqa: F401,F403
from .datasets.class_checks import __all__  # noqa: F401
