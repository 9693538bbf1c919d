"""The project's own small task set: functional and stdin/stdout problems with a few tests each, easy to hard.

Used by the verifier's tests and, later, the RL smoke runs. Each line of tasks.jsonl is one task:

    {"id": "...", "format": "functional" | "stdio", "difficulty": "easy" | "medium" | "hard",
     "prompt": "...",          # functional: signature + docstring (the model completes the body); stdio: the statement
     "solution": "...",        # a reference solution that passes every test
     "tests": [...]}           # functional: assert statements; stdio: {"input": ..., "output": ...} objects

Hard tasks include a large input, so a correct but too slow solution times out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from training.verify.formats import Job, functional_job, stdio_job

TASKS_FILE = Path(__file__).parent / "tasks.jsonl"
DIFFICULTIES = ("easy", "medium", "hard")


@dataclass(frozen=True)
class Task:
    id: str
    format: str
    difficulty: str
    prompt: str
    solution: str
    tests: tuple

    def job(self, code: str) -> Job:
        """A verifier job for ``code``: a whole program (stdio) or a module defining the function (functional)."""
        if self.format == "functional":
            return functional_job(code, list(self.tests), name=self.id)
        return stdio_job(code, [(case["input"], case["output"]) for case in self.tests], name=self.id)


def load_tasks(path: Path = TASKS_FILE, format: str | None = None, difficulty: str | None = None) -> list[Task]:
    tasks = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            tasks.append(_parse(json.loads(line), path, number))
    return [
        t
        for t in tasks
        if (format is None or t.format == format) and (difficulty is None or t.difficulty == difficulty)
    ]


def _parse(data: dict, path: Path, number: int) -> Task:
    task = Task(
        id=data["id"],
        format=data["format"],
        difficulty=data["difficulty"],
        prompt=data["prompt"],
        solution=data["solution"],
        tests=tuple(data["tests"]),
    )
    if task.format not in ("functional", "stdio") or task.difficulty not in DIFFICULTIES or not task.tests:
        raise ValueError(f"{path}:{number}: task {task.id!r} needs a known format, a difficulty and tests")
    return task
