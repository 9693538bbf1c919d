"""The engine's commands (`mimo serve`, `mimo bench decode`); each area keeps its own module, composed here."""

from __future__ import annotations

import importlib

import typer

AREA_MODULES: list[str] = ["engine.server.cli", "engine.bench", "engine.pull"]


def register(groups: dict[str, typer.Typer]) -> None:
    for module_name in AREA_MODULES:
        importlib.import_module(module_name).register(groups)
