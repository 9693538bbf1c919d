"""Verification jobs: a candidate plus its tests, in one of two formats, and how they are read from files.

- functional: Python statements run after the candidate in its namespace. HumanEval's ``check(candidate)`` is one
  test (``setup`` holds the ``def check``, the test is ``check(entry_point)``); an MBPP assert list is one test
  per assert.
- stdio: the candidate is a whole program; each test is an input for stdin and the expected stdout (LiveCodeBench).

Test files for ``mimo verify --tests``:
- ``.py`` (functional): every top-level ``assert`` or expression statement is one test; every other statement
  (imports, definitions, assignments) is setup and runs first, in order;
- ``.json``: ``{"format": "functional", "setup": "...", "tests": ["assert ...", ...]}`` or
  ``{"format": "stdio", "tests": [{"input": "...", "output": "..."}, ...]}``; a bare list means stdio.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from training.errors import UserError

Format = Literal["functional", "stdio"]
FORMATS: tuple[str, ...] = ("functional", "stdio")


@dataclass(frozen=True)
class StdioCase:
    input: str
    output: str


@dataclass(frozen=True)
class Job:
    code: str
    format: Format
    tests: tuple[str, ...] | tuple[StdioCase, ...]
    setup: str = ""  # functional only: runs once after the candidate, before the tests
    name: str = ""

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown test format {self.format!r}; use one of {', '.join(FORMATS)}")

    @property
    def suite(self) -> TestSuite:
        """This job's tests, for ``verify_batch``."""
        return TestSuite(format=self.format, tests=self.tests, setup=self.setup, name=self.name)


@dataclass(frozen=True)
class TestSuite:
    """One problem's tests without a candidate: what ``verify_batch`` runs many candidates against."""

    format: Format
    tests: tuple[str, ...] | tuple[StdioCase, ...]
    setup: str = ""
    name: str = ""

    __test__ = False  # not a pytest class

    def job(self, code: str, name: str = "") -> Job:
        return Job(code=code, format=self.format, tests=self.tests, setup=self.setup, name=name or self.name)


def functional_job(code: str, tests: list[str] | tuple[str, ...], setup: str = "", name: str = "") -> Job:
    return Job(code=code, format="functional", tests=tuple(tests), setup=setup, name=name)


def stdio_job(code: str, cases: list[tuple[str, str]] | list[StdioCase], name: str = "") -> Job:
    parsed = tuple(c if isinstance(c, StdioCase) else StdioCase(input=c[0], output=c[1]) for c in cases)
    return Job(code=code, format="stdio", tests=parsed, name=name)


def split_python_tests(source: str) -> tuple[str, tuple[str, ...]]:
    """(setup, tests) from a Python test file: asserts and bare expressions are tests, the rest is setup."""
    try:
        module = ast.parse(source)
    except SyntaxError as exc:
        raise UserError(f"the tests file is not valid Python (line {exc.lineno}: {exc.msg})") from exc
    setup, tests = [], []
    for statement in module.body:
        text = ast.get_source_segment(source, statement) or ""
        (tests if isinstance(statement, (ast.Assert, ast.Expr)) else setup).append(text)
    return "\n".join(setup), tuple(tests)


def load_job(code_path: Path, tests_path: Path, format: str | None = None) -> Job:
    """Reads a candidate and its tests for the CLI; a bad file raises UserError naming it."""
    code = _read(code_path, "code")
    text = _read(tests_path, "tests")
    if tests_path.suffix == ".json":
        return _job_from_json(code, text, tests_path, format)
    if format == "stdio":
        raise UserError(f"{tests_path}: stdio tests must be a .json file of {{input, output}} cases")
    setup, tests = split_python_tests(text)
    if not tests:
        raise UserError(f"{tests_path} has no tests: write top-level assert statements or check(...) calls")
    return functional_job(code, tests, setup=setup, name=code_path.name)


def _job_from_json(code: str, text: str, path: Path, format: str | None) -> Job:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if isinstance(data, list):
        data = {"format": "stdio", "tests": data}
    chosen = format or data.get("format", "stdio")
    tests = data.get("tests")
    if chosen not in FORMATS or not isinstance(tests, list) or not tests:
        raise UserError(f'{path}: expected a non-empty "tests" list and a format of functional or stdio')
    if chosen == "functional":
        return functional_job(code, [str(t) for t in tests], setup=data.get("setup", ""), name=path.name)
    try:
        cases = [StdioCase(input=str(t["input"]), output=str(t["output"])) for t in tests]
    except (TypeError, KeyError) as exc:
        raise UserError(f'{path}: each stdio test needs "input" and "output" strings') from exc
    return stdio_job(code, cases, name=path.name)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"cannot read the {what} file {path}: {exc.strerror if isinstance(exc, OSError) else exc}"
        ) from None
