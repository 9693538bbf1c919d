"""A rich progress bar for TRL/transformers trainers: steps, steps/s and the figures that matter for the run.

It replaces transformers' tqdm bar and its print-every-log callback (which writes to stdout, where `--json`
output goes). On a terminal the bar redraws; when stderr is a file a plain line is written every `every` steps.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback

SHOWN = {  # log key -> short label
    "loss": "loss",
    "reward": "reward",
    "rollout/pass_rate": "pass",
    "dynamic/dropped_share": "dropped",
    "curriculum/easy_pool": "easy",
    "rollout/mtp_acceptance": "mtp",
    "entropy": "entropy",
}


class RichProgress(TrainerCallback):
    def __init__(self, label: str, show: bool = True, every: int = 10):
        self.label = label
        self.console = Console(stderr=True)
        self.show = show
        self.every = every
        self.progress: Progress | None = None
        self.task = None
        self.started = 0.0
        self.first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if not (self.show and state.is_world_process_zero):
            return
        self.started, self.first_step = time.perf_counter(), state.global_step
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn(f"[bold]{self.label}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("steps {task.fields[rate]}"),
                TextColumn("{task.fields[figures]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                self.label, total=state.max_steps, completed=state.global_step, rate="", figures=""
            )

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not (self.show and state.is_world_process_zero) or not logs:
            return
        figures = "  ".join(f"{label} {logs[key]:.3g}" for key, label in SHOWN.items() if key in logs)
        elapsed = time.perf_counter() - self.started
        done = state.global_step - self.first_step
        rate = f"{done / elapsed:.2f}/s" if elapsed > 0 and done else ""
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step, rate=rate, figures=figures)
        elif figures and (state.global_step % self.every == 0 or state.global_step == state.max_steps):
            self.console.print(
                f"{self.label} step {state.global_step}/{state.max_steps}  {rate}  {figures}  {elapsed:,.0f} s",
                highlight=False,
                soft_wrap=True,
            )

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def quiet_trainer(trainer, progress: RichProgress, log_dir) -> None:
    """Swaps transformers' own reporting for ours: the rich bar, and TensorBoard into ``log_dir`` (None: off)."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(progress)
    if log_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        trainer.add_callback(_tensorboard_callback()(tb_writer=SummaryWriter(log_dir=str(log_dir))))


def _tensorboard_callback():
    from transformers.integrations import TensorBoardCallback

    class NumbersOnly(TensorBoardCallback):
        """TRL logs None for a statistic of an empty set (no token left to clip); TensorBoard takes numbers."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = {key: value for key, value in (logs or {}).items() if value is not None}
            super().on_log(args, state, control, logs=logs, **kwargs)

    return NumbersOnly
