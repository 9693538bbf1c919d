"""Coding tasks with tests: the format (``format.py``), importers for public sets (``importers.py``), n-gram
decontamination (``decontaminate.py``), the generated task families of the RL proof (``families.py``), and the
project's own small task set, ``tasks.jsonl``.

``tasks.jsonl`` holds 17 functional and stdio problems with a few tests each, easy to hard, each with a reference
solution; hard tasks include a large input, so a correct but too slow solution times out. The verifier's tests
and the RL smoke runs use it.
"""

from __future__ import annotations

from pathlib import Path

from training.tasks.format import DIFFICULTIES, StdioTest, Task, read_tasks, write_tasks

TASKS_FILE = Path(__file__).parent / "tasks.jsonl"

__all__ = ["DIFFICULTIES", "TASKS_FILE", "StdioTest", "Task", "load_tasks", "read_tasks", "write_tasks"]


def load_tasks(path: Path = TASKS_FILE, format: str | None = None, difficulty: str | None = None) -> list[Task]:
    """The tasks of a JSONL file (default: the project's own), optionally only one format or difficulty."""
    return [
        task
        for task in read_tasks(path)
        if (format is None or task.format == format) and (difficulty is None or task.difficulty == difficulty)
    ]
