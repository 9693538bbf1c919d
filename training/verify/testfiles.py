"""Reading a candidate and its tests from files, for ``mimo verify``.

Test files:
- ``.py`` (functional): every top-level ``assert`` or expression statement (``check(f)``) is one test; so is every
  pytest-style ``def test_*()`` function (called with no arguments) and every ``test_*`` method of a
  ``class Test*`` (on a fresh instance). Every other statement (imports, helpers, assignments) is setup and runs
  first, in order. Test functions that take arguments (pytest fixtures, ``parametrize``) are refused with the
  name of the function; so is ``import pytest`` being needed, since pytest is not inside the sandbox;
- ``.json``: ``{"format": "functional", "setup": "...", "tests": ["assert ...", ...]}`` or
  ``{"format": "stdio", "tests": [{"input": "...", "output": "..."}, ...]}``; a bare list means stdio.

Anything malformed is a ``UserError`` that names the file and the entry.
"""

from __future__ import annotations

import ast
import json
import os
import stat
from pathlib import Path

from training.errors import UserError
from training.verify.formats import FORMATS, Job, MalformedTests, StdioCase, functional_job, stdio_job


def split_python_tests(source: str) -> tuple[str, tuple[str, ...]]:
    """(setup, tests) from a Python test file, in time linear in its size."""
    try:
        module = ast.parse(source)
    except SyntaxError as exc:
        raise UserError(f"the tests file is not valid Python (line {exc.lineno}: {exc.msg})") from None
    segment = _Segments(source)
    setup, tests = [], []
    for statement in module.body:
        if isinstance(statement, (ast.Assert, ast.Expr)):
            tests.append(segment(statement))
            continue
        setup.append(segment(statement))
        tests.extend(_pytest_style(statement))
    return "\n".join(setup), tuple(tests)


class _Segments:
    """The source text of a statement, from offsets computed once (``ast.get_source_segment`` re-splits the
    whole file on every call, which made a file of n asserts cost O(n^2))."""

    def __init__(self, source: str):
        self.lines = source.splitlines(keepends=True)

    def __call__(self, node: ast.stmt) -> str:
        first, last = node.lineno - 1, node.end_lineno - 1
        if first == last:
            return _slice(self.lines[first], node.col_offset, node.end_col_offset)
        head = _slice(self.lines[first], node.col_offset, None)
        tail = _slice(self.lines[last], 0, node.end_col_offset)
        return head + "".join(self.lines[first + 1 : last]) + tail


def _slice(line: str, start: int, end: int | None) -> str:
    # ast offsets count UTF-8 bytes
    raw = line.encode("utf-8")
    return raw[start:end].decode("utf-8")


def _pytest_style(statement: ast.stmt) -> list[str]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)) and statement.name.startswith("test"):
        _check_no_arguments(statement, statement.name, method=False)
        return [f"{statement.name}()"]
    if isinstance(statement, ast.ClassDef) and statement.name.startswith("Test"):
        tests = []
        for item in statement.body:
            if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                _check_no_arguments(item, f"{statement.name}.{item.name}", method=True)
                tests.append(f"{statement.name}().{item.name}()")
        return tests
    return []


def _check_no_arguments(function, name: str, method: bool) -> None:
    if isinstance(function, ast.AsyncFunctionDef):
        raise UserError(f"{name} is async: the verifier calls test functions synchronously")
    arguments = function.args
    count = len(arguments.posonlyargs) + len(arguments.args) - (1 if method else 0)
    if count or arguments.kwonlyargs or arguments.vararg or arguments.kwarg or function.decorator_list:
        raise UserError(
            f"{name} takes arguments or decorators (pytest fixtures or parametrize), which the verifier cannot "
            "provide: write it as a function without parameters, or as top-level asserts"
        )


def load_job(code_path: Path, tests_path: Path, format: str | None = None) -> Job:
    """Reads a candidate and its tests for the CLI; a bad file raises UserError naming it and the entry."""
    code = _read(code_path, "code")
    text = _read(tests_path, "tests")
    try:
        if tests_path.suffix == ".json":
            return _job_from_json(code, text, tests_path, format)
        if format == "stdio":
            raise UserError(f"{tests_path}: stdio tests must be a .json file of {{input, output}} cases")
        setup, tests = split_python_tests(text)
        if not tests:
            raise UserError(
                f"{tests_path} has no tests: write top-level assert statements, check(...) calls or test_* functions"
            )
        return functional_job(code, tests, setup=setup, name=code_path.name)
    except MalformedTests as exc:
        raise UserError(f"{tests_path}: {exc}") from None


def _job_from_json(code: str, text: str, path: Path, format: str | None) -> Job:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise UserError(f"{path} is nested too deeply to read") from None
    if isinstance(data, list):
        data = {"format": "stdio", "tests": data}
    if not isinstance(data, dict):
        raise UserError(
            f"{path} holds {type(data).__name__ if data is not None else 'null'}: expected a list of "
            '{"input", "output"} cases or an object with "tests" (see docs/verifier.md)'
        )
    chosen = format or data.get("format", "stdio")
    tests = data.get("tests")
    if chosen not in FORMATS or not isinstance(tests, list) or not tests:
        raise UserError(f'{path}: expected a non-empty "tests" list and a format of functional or stdio')
    if chosen == "functional":
        return functional_job(code, tests, setup=data.get("setup", ""), name=path.name)
    return stdio_job(code, [_stdio_case(i, t) for i, t in enumerate(tests)], name=path.name)


def _stdio_case(index: int, entry) -> StdioCase:
    if not isinstance(entry, dict) or set(entry) != {"input", "output"}:
        raise MalformedTests(
            f'stdio test {index} must be an object with exactly "input" and "output", got {entry!r:.80}'
        )
    return StdioCase(input=entry["input"], output=entry["output"])


MAX_FILE_BYTES = 16 << 20


def _read(path: Path, what: str) -> str:
    """A regular file of at most MAX_FILE_BYTES (not a FIFO that never ends, not /dev/zero), as UTF-8."""
    try:
        with path.open("rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UserError(f"the {what} file {path} is not a regular file")
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise UserError(f"the {what} file {path} is larger than {MAX_FILE_BYTES >> 20} MiB")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else exc
        raise UserError(f"cannot read the {what} file {path}: {reason}") from None
