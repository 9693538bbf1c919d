"""Errors a person can fix: the CLI prints their message (no traceback) and exits with status 2."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class UserError(Exception):
    """Bad input: a missing source, an empty corpus, an unknown config key... The message says what to do."""


class ConfigError(UserError):
    """A configuration file or table that does not validate."""


def config_error(error: ValidationError, root: type, where: str = "", prefix: tuple = ()) -> ConfigError:
    """A ConfigError naming every key pydantic rejected (`where`: the file they came from), on one line."""
    from engine.config_errors import problem_lines

    lines = problem_lines(error, root, mapping="a table", prefix=prefix)
    return ConfigError(f"{where}: " * bool(where) + "; ".join(lines))
