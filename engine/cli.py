"""The engine's commands: `mimo serve`, `mimo bench decode`."""

from __future__ import annotations

import typer


def register(groups: dict[str, typer.Typer]) -> None:
    """Adds the engine's commands to the `mimo` command groups."""
