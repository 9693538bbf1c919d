"""`mimo lsp`, `mimo complete`, `mimo stats` and `mimo bench lsp`: argument parsing only; the work is in
launch.py, shell.py, telemetry.py and bench.py."""

from __future__ import annotations

from typing import Annotated

import typer


def register(groups: dict[str, typer.Typer]) -> None:
    root = groups["root"]

    @root.command("lsp")
    def lsp_command(
        stdio: Annotated[bool, typer.Option("--stdio", help="Talk over stdin/stdout (the default).")] = False,
        tcp: Annotated[str | None, typer.Option("--tcp", metavar="HOST:PORT", help="Listen on TCP instead.")] = None,
    ) -> None:
        """Run the MiMo language server (inline and popup completions, checked fix-its, diagnostics)."""
        from lsp_server.launch import parse_tcp, serve

        if stdio and tcp:
            typer.echo("error: choose one of --stdio and --tcp", err=True)
            raise typer.Exit(2)
        try:
            address = parse_tcp(tcp) if tcp else None
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        serve(address)
