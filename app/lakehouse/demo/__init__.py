"""The MovieLens demo: the sample's loader, the change generator, and `lakehouse demo`."""
