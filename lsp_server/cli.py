"""The language server package's commands (`mimo lsp`, `mimo complete`, `mimo stats`, `mimo review`); each area keeps its own module, composed here."""

from __future__ import annotations

import importlib

import typer

AREA_MODULES: list[str] = ["lsp_server.commands", "lsp_server.review.cli"]


def register(groups: dict[str, typer.Typer]) -> None:
    for module_name in AREA_MODULES:
        importlib.import_module(module_name).register(groups)
