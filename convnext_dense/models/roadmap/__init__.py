"""The paper's roadmap (ResNet-50 / -200 to ConvNeXt) as dense-prediction backbones and their checkpoint loading."""
