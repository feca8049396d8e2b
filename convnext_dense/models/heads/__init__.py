"""Heads for the OpenMMLab toolkits (they import their toolkit); registered on the first look-up of a config."""
