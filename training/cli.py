"""The training package's commands; each area keeps its own `cli` module, composed here."""

from __future__ import annotations

import importlib

import typer

AREA_MODULES: list[str] = [
    "training.pretrain_cli",
    "training.data.cli",
    "training.verify.cli",
    "training.repo.cli",
    "training.rl.cli",
    "training.rl.eval_cli",
]


def register(groups: dict[str, typer.Typer]) -> None:
    for module_name in AREA_MODULES:
        importlib.import_module(module_name).register(groups)
