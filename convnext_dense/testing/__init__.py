"""Reference code for tests and benchmarks: the official ConvNeXt model, independent of ours."""
