"""Experiments and one-off probes: run from a checkout (`python -m tools.<name>`), not shipped."""
