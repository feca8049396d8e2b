"""Checks of a run's data and classes, before the datasets are built."""
