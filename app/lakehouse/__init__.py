"""Real-time CDC lakehouse reference stack: the `lakehouse` CLI and its parts."""

__version__ = "0.1.0"
