"""The package version: setup.py and ``convnext_dense.__version__`` read it here."""
__version__ = '0.2.0'
