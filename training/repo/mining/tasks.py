"""Repo tasks: one function body to write, checked by the repository's own tests, and how a candidate is verified.

A record is a line of the project's task format (training/tasks/format.py) with `"format": "repo"`:

    {"id": "pkg/mod.py::Class.method",
     "format": "repo",
     "prompt": "<the file up to the body: imports, the class, the signature and docstring>",
     "tests": ["tests/test_mod.py::test_method", ...],      # pytest node ids, relative to the repository root
     "solution": "<the prompt followed by the original body>",
     "source": "repo/<name>",
     "meta": {"repo": "/abs/root", "path": "pkg/mod.py", "function": "Class.method", "lines": [start, end],
              "suffix": "<the file after the body>", "indent": "    ", "python": "/abs/python"}}

The program for a model's completion is `prompt.rstrip() + completion` (the format's `Task.program`) followed
by the suffix: the model writes the body (starting with a newline) and the file continues after it. The
verdict: the body passes the static screen (screen.py), the file parses, and pytest, run in the verifier's
sandbox (runner.py) on the node ids with that file bound over the original, exits 0 with every node id
reported as passed.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from training.errors import UserError
from training.repo.mining.runner import RunLimits, run_pytest
from training.repo.mining.screen import screen

FORMAT = "repo"


@dataclass(frozen=True)
class RepoTask:
    id: str
    prompt: str
    tests: tuple[str, ...]
    solution: str
    source: str
    repo: str
    path: str
    function: str
    lines: tuple[int, int]
    suffix: str
    indent: str
    python: str

    @property
    def model_prompt(self) -> str:
        return self.prompt.rstrip()

    @property
    def reference_completion(self) -> str:
        return self.solution[len(self.model_prompt) :]

    def file_text(self, completion: str) -> str:
        """The whole file with the model's completion as the body."""
        program = self.model_prompt + completion
        return program + ("" if program.endswith("\n") else "\n") + self.suffix

    def to_json(self) -> dict:
        meta = {"repo": self.repo, "path": self.path, "function": self.function, "lines": list(self.lines),
                "suffix": self.suffix, "indent": self.indent, "python": self.python}  # fmt: skip
        return {"id": self.id, "format": FORMAT, "prompt": self.prompt, "tests": list(self.tests),
                "solution": self.solution, "source": self.source, "meta": meta}  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    passed: bool
    outcomes: dict[str, str]  # node id -> passed / failed / skipped / missing
    detail: str = ""
    completed: bool = True  # False when pytest did not run to its end (timed out, killed, interrupted, crashed)


def verify_completion(task: RepoTask, completion: str, limits: RunLimits | None = None) -> Verdict:
    """Runs the task's tests on the file with `completion` as the function's body."""
    body = completion.split("\n", 1)[1] if completion.startswith("\n") else completion
    if reason := screen(body):
        return Verdict(False, {}, reason)
    text = task.file_text(completion)
    try:
        ast.parse(text)
    except (SyntaxError, ValueError) as error:
        return Verdict(False, {}, f"the file does not parse with this body: {error}")
    return run_tests(task, text, limits or RunLimits(timeout_s=120))


def run_tests(task: RepoTask, text: str, limits: RunLimits) -> Verdict:
    run = run_pytest(Path(task.repo), list(task.tests), limits, overlay={task.path: text})
    outcomes = {test: run.outcomes.get(test, "missing") for test in task.tests}
    if run.timed_out:
        return Verdict(False, outcomes, f"timed out after {limits.timeout_s:.0f} s", completed=False)
    passed = run.exit_code == 0 and all(outcome == "passed" for outcome in outcomes.values())
    failed = [test for test, outcome in outcomes.items() if outcome != "passed"]
    detail = "" if passed else f"exit {run.exit_code}; not passed: {', '.join(failed[:3]) or 'none reported'}"
    return Verdict(passed, outcomes, detail, completed=run.exit_code in (0, 1))  # pytest: 1 = some tests failed


def load_repo_tasks(path: Path) -> list[RepoTask]:
    """The repo tasks of a JSONL file (other formats are skipped)."""
    tasks = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if record.get("format") != FORMAT:
                continue
            meta = record["meta"]
            tasks.append(RepoTask(
                id=record["id"], prompt=record["prompt"], tests=tuple(record["tests"]), solution=record["solution"],
                source=record.get("source", ""), repo=meta["repo"], path=meta["path"], function=meta["function"],
                lines=tuple(meta["lines"]), suffix=meta["suffix"], indent=meta["indent"], python=meta["python"],
            ))  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise UserError(f"{path}:{number}: not a repo task ({error})") from None
    return tasks
