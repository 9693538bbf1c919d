"""What a person watching a pretraining run sees: a rich progress bar with rates and losses, and TensorBoard logs.

Only the first process of a multi-process run reports; the others get a `Monitor` that does nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Monitor:
    """Progress counted in tokens; `log` receives each step's record (see TrainState.history)."""

    def __init__(
        self, total_tokens: int, tokens_done: int, log_dir: Path | None, show_progress: bool = True, log_every: int = 10
    ):
        self._writer = _summary_writer(log_dir)
        self._console = Console(stderr=True)
        # A bar only redraws on a terminal; a run logging to a file gets a plain line every `log_every` steps.
        self._progress = _progress_bar(self._console) if show_progress and self._console.is_terminal else None
        self._log_lines = show_progress and not self._console.is_terminal
        self._log_every = log_every
        self._total = total_tokens
        self._task = None
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(
                "pretrain", total=total_tokens, completed=tokens_done, rate="", loss=""
            )
        self._window_start = time.perf_counter()
        self._window_tokens = 0

    def log(self, record: dict, tokens_this_step: int) -> None:
        self._window_tokens += tokens_this_step
        elapsed = time.perf_counter() - self._window_start
        rate = self._window_tokens / elapsed if elapsed > 0 else 0.0
        if self._writer is not None:
            for key in ("loss", "main_loss", "mtp_loss", "lr", "mtp_loss_weight"):
                self._writer.add_scalar(f"train/{key}", record[key], record["tokens"])
            self._writer.add_scalar("train/tokens_per_second", rate, record["tokens"])
        if self._log_lines and record["step"] % self._log_every == 0:
            self._console.print(
                f"step {record['step']}  {record['tokens']:,}/{self._total:,} tokens  {rate:,.0f} tok/s  "
                f"loss {record['main_loss']:.3f}  mtp {record['mtp_loss']:.3f}  lr {record['lr']:.2e}  "
                f"[{record['stage']}]  {elapsed:,.0f} s",
                highlight=False,
                soft_wrap=True,
            )
        if self._progress is not None:
            self._progress.update(
                self._task,
                advance=tokens_this_step,
                rate=f"{rate:,.0f} tok/s",
                loss=f"loss {record['main_loss']:.3f}  mtp {record['mtp_loss']:.3f}  [{record['stage']}]",
            )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._writer is not None:
            self._writer.close()


def _progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]pretrain"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tokens"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _summary_writer(log_dir: Path | None):
    if log_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))
