"""Errors a person can fix: the CLI prints their message (no traceback) and exits with status 2."""


class UserError(Exception):
    """Bad input: a missing source, an empty corpus, an unknown config key... The message says what to do."""


class ConfigError(UserError):
    """A configuration file or table that does not validate."""
