"""Errors the CLI turns into one clear line and a non-zero exit."""


class LakehouseError(Exception):
    """A failure the user can act on; the message says what and how to fix it."""


class ConfigError(LakehouseError):
    """A settings, versions or config-file problem, found before anything starts."""


class UsageError(LakehouseError):
    """A command-line argument that names nothing valid (exit 2, like click's own usage errors)."""


class ServiceError(LakehouseError):
    """A service did not start or become ready in time."""
