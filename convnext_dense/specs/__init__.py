"""The tables the models, checkpoints and tools are built from (plain Python and PyTorch): ConvNeXt's sizes
(``arch``) and the paper's roadmap designs with their published numbers (``roadmap``)."""
