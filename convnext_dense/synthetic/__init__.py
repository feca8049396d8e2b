"""Seeded synthetic datasets in the real COCO and ADE20K layouts, for the demos and the tests."""
