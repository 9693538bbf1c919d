"""The task format: one JSON object per line, a coding problem with its tests (format version 1).

Every consumer (RL, SFT, calibration, `mimo eval tasks`, the repository miner) reads and writes tasks through this
module, so a file written by one is read by all. Fields:

    {"id": "sum_of_squares",            # unique within a file
     "format": "functional",            # the task's kind: "functional" | "stdio" | "repo" (below)
     "prompt": "def f(n):\\n    ...",    # what the model is shown
     "prompt_format": "code",           # optional. "code": the model continues the prompt (default for functional);
                                        #   "text": a statement in prose (default for stdio), shown to a base model
                                        #   as a module docstring (see `Task.model_prompt`)
     "tests": ["assert f(1) == 1"],     # functional: one Python statement (or block) per test, run after the
                                        #   candidate in its namespace; stdio: [{"input": "...", "output": "..."}]
     "setup": "",                       # optional, functional only: runs once before the tests (imports, helpers,
                                        #   HumanEval's `def check`)
     "entry_point": "f",                # optional: the function the tests call
     "solution": "...",                 # optional: a complete reference program that passes every test
     "difficulty": "easy",              # optional: "easy" | "medium" | "hard"
     "test_levels": [0, 0, 1],          # optional: each test's difficulty level, 0 = easiest (`mimo train calibrate`)
     "test_pass_rates": [0.9, 0.8, 0.1],# optional: each test's pass rate over the calibration rollouts
     "eval_only": false,                # true: evaluation data (HumanEval...); training commands refuse it
     "source": "project",               # where it came from: "project", "generated/<family>", "humaneval", ...
     "meta": {}}                        # anything else, kept as is

The program the verifier runs for a completion is ``task.model_prompt + completion`` (`Task.program`): a function
body completes its signature; a whole program follows its statement's docstring. ``model_prompt`` ends without
trailing whitespace (see there), so completions start with a newline. Unknown fields are errors (a
typo never silently drops data); put free-form data in ``meta``.

A "repo" task (`mimo train repo PATH --tasks OUT.jsonl` mines them, training/repo/mining/tasks.py) is one function
body of a repository, checked by that repository's own tests: ``prompt`` is the file up to the body, ``tests``
are pytest node ids, ``solution`` the prompt with the original body, and ``meta`` says where it lives and what
follows: {"repo": "/abs/root", "path": "pkg/mod.py", "function": "Class.method", "lines": [start, end],
"suffix": "<the file after the body>", "indent": "    ", "python": "/abs/python"}. Its verdict comes from
pytest run in the sandbox on the file with the completion as the body (training/tasks/repo.py), not from
``suite``; it has no ``setup``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from training.errors import UserError
from training.verify.formats import Job, StdioCase, TestSuite

FORMAT_VERSION = 1
TASK_FORMATS = ("functional", "stdio", "repo")
# A repo task's meta: what training.repo.mining.tasks.RepoTask needs to rebuild the file and run its tests.
REPO_META = {"repo": str, "path": str, "function": str, "lines": list, "suffix": str, "indent": str, "python": str}
DIFFICULTIES = ("easy", "medium", "hard")


class StdioTest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    input: str
    output: str


class Task(BaseModel):
    """One problem. Frozen: derive changed copies with ``task.model_copy(update={...})``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    format: Literal["functional", "stdio", "repo"]
    prompt: str
    prompt_format: Literal["code", "text"] | None = None
    tests: tuple[str, ...] | tuple[StdioTest, ...] = Field(min_length=1)
    setup: str = ""
    entry_point: str | None = None
    solution: str | None = None
    difficulty: Literal["easy", "medium", "hard"] | None = None
    test_levels: tuple[int, ...] | None = None
    test_pass_rates: tuple[float, ...] | None = None
    eval_only: bool = False
    source: str = ""
    meta: dict = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _tests_match_format(cls, data):
        if isinstance(data, dict) and isinstance(data.get("tests"), list):
            kind = data.get("format")
            for index, test in enumerate(data["tests"]):
                if kind == "functional" and not isinstance(test, str):
                    raise ValueError(f"tests[{index}]: a functional test is a Python statement (a string)")
                if kind == "repo" and not (isinstance(test, str) and test.strip() and not test.startswith("-")):
                    raise ValueError(f"tests[{index}]: a repo test is a pytest node id (a string, not an option)")
                if kind == "stdio" and not isinstance(test, (dict, StdioTest)):
                    raise ValueError(f'tests[{index}]: a stdio test is an object {{"input": ..., "output": ...}}')
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Task:
        if self.format != "functional" and self.setup:
            raise ValueError("setup is for functional tasks only")
        for name in ("test_levels", "test_pass_rates"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.tests):
                raise ValueError(f"{name} has {len(values)} entries for {len(self.tests)} tests")
        if self.test_levels is not None and min(self.test_levels) < 0:
            raise ValueError("test_levels must be >= 0 (0 is the easiest level)")
        if self.test_pass_rates is not None and not all(0.0 <= p <= 1.0 for p in self.test_pass_rates):
            raise ValueError("test_pass_rates must lie in [0, 1]")
        if self.format == "repo":
            _check_repo_meta(self.meta)
        else:
            _ = self.suite  # the verifier's own checks: a test that does not compile or checks nothing is refused
        return self

    @property
    def effective_prompt_format(self) -> str:
        return self.prompt_format or ("text" if self.format == "stdio" else "code")

    @property
    def model_prompt(self) -> str:
        """The text a model continues: the prompt, or a prose statement as a module docstring, without trailing
        whitespace. BPE merges a newline with the indentation after it, so a prompt ending in "\\n" would make
        the model continue from a token split it never saw in training; the completion starts with the newline."""
        if self.effective_prompt_format == "code":
            return self.prompt.rstrip()
        return '"""\n' + self.prompt.strip().replace('"""', "'''") + '\n"""'

    def program(self, completion: str) -> str:
        """The program the verifier runs for a model's completion of ``model_prompt``."""
        return self.model_prompt + completion

    @property
    def reference_completion(self) -> str | None:
        """What a model should write after ``model_prompt`` to reproduce the reference solution (SFT targets)."""
        if self.solution is None:
            return None
        prompt = self.model_prompt
        return self.solution[len(prompt) :] if self.solution.startswith(prompt) else "\n" + self.solution

    @property
    def suite(self) -> TestSuite:
        """The task's tests for the verifier (``verify_batch`` runs many candidates against it)."""
        if self.format == "repo":
            raise ValueError(f"{self.id}: a repo task runs its repository's tests (training.tasks.repo), no suite")
        if self.format == "functional":
            return TestSuite(format="functional", tests=tuple(self.tests), setup=self.setup, name=self.id)
        cases = tuple(StdioCase(input=t.input, output=t.output) for t in self.tests)
        return TestSuite(format="stdio", tests=cases, name=self.id)

    def job(self, code: str) -> Job:
        """A verifier job for a whole program ``code`` (use ``program(completion)`` for a model's completion)."""
        return self.suite.job(code)

    def to_json(self) -> dict:
        """The record as written to a file: defaults left out, so files stay short and readable."""
        return self.model_dump(mode="json", exclude_defaults=True)


def _check_repo_meta(meta: dict) -> None:
    """A repo task's meta has every field RepoTask needs, of the right type; the file stays inside the repository."""
    for key, kind in REPO_META.items():
        if not isinstance(meta.get(key), kind):
            raise ValueError(f"a repo task needs meta.{key} ({kind.__name__}); see training/repo/mining/tasks.py")
    path = PurePosixPath(meta["path"])
    if path.is_absolute() or ".." in path.parts or not meta["path"].endswith(".py"):
        raise ValueError(f"meta.path {meta['path']!r} must be a .py file's path inside the repository")
    if not PurePosixPath(meta["repo"]).is_absolute():
        raise ValueError(f"meta.repo {meta['repo']!r} must be an absolute path")
    lines = meta["lines"]
    if not (len(lines) == 2 and all(isinstance(n, int) and n >= 1 for n in lines) and lines[0] <= lines[1]):
        raise ValueError(f"meta.lines {lines!r} must be [first, last] line numbers of the body")


def parse_task(data: object, where: str = "task") -> Task:
    """A Task from a decoded JSON object; a UserError naming ``where``, the field and the problem otherwise."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: a task is a JSON object, got {type(data).__name__}")
    try:
        return Task.model_validate(data)
    except ValidationError as error:
        raise UserError(f"{where}: {_describe(error, data)}") from None


def _describe(error: ValidationError, data: dict) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "record"
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(Task.model_fields)
        return f"unknown field {field!r}; allowed: {allowed} (free-form data goes in 'meta')"
    if first["type"] == "missing":
        return f"missing field {field!r}"
    value = first.get("input")
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    name = f"task {data.get('id')!r}: " if isinstance(data.get("id"), str) else ""
    return f"{name}{field} = {shown}: {first['msg']}"


def read_tasks(path: Path) -> list[Task]:
    """Every task in a JSONL file, checked: bad JSON, a bad field or a repeated id is a UserError naming the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise UserError(f"cannot read the task file {path}: {reason}") from None
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from None
        task = parse_task(data, where)
        if task.id in seen:
            raise UserError(f"{where}: task id {task.id!r} repeats line {seen[task.id]}; ids must be unique")
        seen[task.id] = number
        tasks.append(task)
    if not tasks:
        raise UserError(f"{path} holds no tasks (one JSON object per line, see training/tasks/format.py)")
    return tasks


def write_tasks(path: Path, tasks: Iterable[Task]) -> Path:
    """Writes tasks as JSONL (atomically: a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        for task in tasks:
            out.write(json.dumps(task.to_json(), ensure_ascii=False) + "\n")
    partial.replace(path)
    return path


def training_tasks(tasks: list[Task], path: Path | str = "the task file") -> list[Task]:
    """``tasks`` for a training command: evaluation-only tasks (HumanEval...) are refused, not skipped."""
    held = [task.id for task in tasks if task.eval_only]
    if held:
        shown = ", ".join(held[:3]) + (" ..." if len(held) > 3 else "")
        raise UserError(f"{path} has {len(held)} evaluation-only task(s) ({shown}); they must not be trained on")
    return tasks
