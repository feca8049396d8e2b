"""The OpenMMLab toolkits convnext_dense plugs into; a config's ``default_scope`` picks one."""
TOOLKITS = ('mmdet', 'mmseg')
