"""What a person watching `mimo train repo` sees on stderr: a rich bar over the planned tokens with the rate,
the pass over the data, the training and validation losses and the time left; a plain line per evaluation
(and every `log_every` steps) when stderr is not a terminal."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    def __init__(self, train_tokens: int, show: bool = True, log_every: int = 10):
        self._console = Console(stderr=True)
        self._show = show
        self._bar = None
        self._task = None
        self._train_tokens = train_tokens
        self._log_every = log_every
        self._window = (time.perf_counter(), 0)

    def __enter__(self) -> TrainProgress:
        if self._show and self._console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]train repo"), BarColumn(), MofNCompleteColumn(), TextColumn("tokens"),
                TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), console=self._console,
            )  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task("train", total=None, rate="", status="")
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def rate(self, tokens: int) -> float:
        started, counted = self._window
        self._window = (started, counted + tokens)
        elapsed = time.perf_counter() - started
        return (counted + tokens) / elapsed if elapsed > 0 else 0.0

    def step(self, state, tokens: int, loss: float) -> None:
        rate = self.rate(tokens)
        epoch = state.tokens / max(1, self._train_tokens)
        best = f"  val best {state.best_loss:.3f}" if state.evals else ""
        status = f"pass {epoch:.2f}  loss {loss:.3f}{best}"
        if self._bar is not None:
            total = state.plan_tokens or None
            self._bar.update(self._task, completed=state.tokens, total=total, rate=f"{rate:,.0f} tok/s", status=status)
        elif self._show and state.step % self._log_every == 0:
            planned = f"/{state.plan_tokens:,}" if state.plan_tokens else ""
            eta = _eta(state, rate)
            self._print(f"step {state.step}  {state.tokens:,}{planned} tokens  {rate:,.0f} tok/s  {status}  ETA {eta}")

    def evaluated(self, record: dict, state) -> None:
        if not self._show:
            return
        acceptance = "" if record["acceptance"] is None else f"  MTP acceptance {record['acceptance']:.1%}"
        mark = "  (best)" if state.best_step == record["step"] else f"  (no gain {state.bad_evals})"
        self._print(f"validation after pass {record['epoch']:.2f}: loss {record['loss']:.4f}{acceptance}{mark}")

    def note(self, message: str) -> None:
        if self._show:
            self._print(message)

    def _print(self, message: str) -> None:
        (self._bar.console if self._bar is not None else self._console).print(message, highlight=False, soft_wrap=True)


def _eta(state, rate: float) -> str:
    if not state.plan_tokens or rate <= 0:
        return "-"
    seconds = max(0, state.plan_tokens - state.tokens) / rate
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
