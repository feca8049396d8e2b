"""Helpers every layer may use: atomic file writes, logging that reaches mmengine's log where it is installed."""
