"""mmengine's optimizer constructor with ConvNeXt's layer decay."""
