"""Rich progress bars on stderr for the long steps (reading, dedup, tokenising); silent when stderr is not a
terminal, so logs and tests stay clean."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text


class _RateColumn(ProgressColumn):
    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} {self.unit}/s" if speed else f"- {self.unit}/s", style="progress.data.speed")


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None, unit: str = "files", stream: TextIO | None = None
) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`; draws "description ━━━ done/total rate elapsed" while the block runs, on `stream`
    (default: stderr as it is when drawing)."""
    console = Console(file=stream) if stream is not None else Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(unit),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, disable=not console.is_terminal, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)
