"""Errors the CLI turns into one clear line and a non-zero exit."""


class LakehouseError(Exception):
    """A failure the user can act on; the message says what and how to fix it."""


class ConfigError(LakehouseError):
    """A settings, versions or config-file problem, found before anything starts."""


class ServiceError(LakehouseError):
    """A service did not start or become ready in time."""
