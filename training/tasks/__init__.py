"""Coding tasks with tests: the format (``format.py``), importers for public sets (``importers.py``), n-gram
decontamination (``decontaminate.py``), the generated task families of the RL proof (``families.py``), and the
project's own small task set, ``tasks.jsonl``.

``tasks.jsonl`` holds 17 functional and stdio problems with a few tests each, easy to hard, each with a reference
solution; hard tasks include a large input, so a correct but too slow solution times out. The verifier's tests
and the RL smoke runs use it.
"""

from __future__ import annotations

from pathlib import Path

from training.errors import UserError
from training.tasks.format import DIFFICULTIES, StdioTest, Task, read_tasks, write_tasks

TASKS_FILE = Path(__file__).parent / "tasks.jsonl"
GENERATED_DIR = Path(__file__).parent / "generated"
# Task sets by name, for configs and `--tasks`: the project's own, and the generated families of the RL proof
# (`mimo train make-tasks` writes them; training/tasks/families.py).
BUILTIN_SETS = {
    "project": TASKS_FILE,
    "families-sft": GENERATED_DIR / "sft.jsonl",
    "families-train": GENERATED_DIR / "train.jsonl",
    "families-heldout": GENERATED_DIR / "heldout.jsonl",
}

__all__ = [
    "BUILTIN_SETS",
    "DIFFICULTIES",
    "TASKS_FILE",
    "StdioTest",
    "Task",
    "load_tasks",
    "read_tasks",
    "resolve_task_file",
    "write_tasks",
]


def resolve_task_file(name: str | Path, base_dir: Path | None = None) -> Path:
    """A built-in set's file, or a path (relative ones from ``base_dir``); a UserError if there is no such file."""
    if str(name) in BUILTIN_SETS:
        return BUILTIN_SETS[str(name)]
    path = Path(name).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise UserError(f"no task file {path}; pass a JSONL task file or one of: {', '.join(BUILTIN_SETS)}")
    return path


def load_tasks(path: Path = TASKS_FILE, format: str | None = None, difficulty: str | None = None) -> list[Task]:
    """The tasks of a JSONL file (default: the project's own), optionally only one format or difficulty."""
    return [
        task
        for task in read_tasks(path)
        if (format is None or task.format == format) and (difficulty is None or task.difficulty == difficulty)
    ]
