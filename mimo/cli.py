"""The root `mimo` command.

Each package owns its commands in a `cli` module with a `register(groups)` function; this file only composes
them. `groups` maps "root" and each command group ("train", "eval", "bench") to its Typer app. Command modules
keep heavy imports (torch, transformers) inside the command functions so `mimo --help` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import os

import typer

COMMAND_MODULES = [
    "engine.cli",
    "training.cli",
    "lsp_server.cli",
]

app = typer.Typer(
    name="mimo",
    help="A self-hosted coding assistant built around Xiaomi's MiMo models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
GROUPS: dict[str, typer.Typer] = {
    "root": app,
    "train": typer.Typer(help="Build data, tokenizers and models.", no_args_is_help=True),
    "eval": typer.Typer(help="Evaluate models.", no_args_is_help=True),
    "bench": typer.Typer(help="Benchmarks that print figures as JSON.", no_args_is_help=True),
}


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages to stderr.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else os.environ.get("MIMO_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _compose() -> None:
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(GROUPS)
    for name in ("train", "eval", "bench"):
        app.add_typer(GROUPS[name], name=name)


_compose()


def main() -> None:
    # vLLM logs to stdout by default, which would mix its lines into `--json` output.
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # nothing leaves the machine unasked (docs/privacy.md)
    app()


if __name__ == "__main__":
    main()
