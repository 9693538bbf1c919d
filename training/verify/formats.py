"""Verification jobs: a candidate plus its tests, in one of two formats, checked when they are made.

- functional: Python statements run on the trusted side, calling into the candidate. HumanEval's
  ``check(candidate)`` is one test (``setup`` holds the ``def check``, the test is ``check(entry_point)``); an MBPP
  assert list is one test per assert.
- stdio: the candidate is a whole program; each test is an input for stdin and the expected stdout (LiveCodeBench).

Malformed tests raise ``MalformedTests`` naming the bad entry, before anything runs: a test that is not a string,
does not compile or checks nothing (no assert, call or raise), a stdio case that is not two strings, text that is
not valid Unicode (a lone surrogate). A verdict is never given on tests that failed to parse.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from typing import Literal

Format = Literal["functional", "stdio"]
FORMATS: tuple[str, ...] = ("functional", "stdio")


class MalformedTests(ValueError):
    """The tests cannot be run as given; the message names the entry and what is wrong with it."""


@dataclass(frozen=True)
class StdioCase:
    input: str
    output: str


@dataclass(frozen=True)
class TestSuite:
    """One problem's tests without a candidate: what ``verify_batch`` runs many candidates against."""

    format: Format
    tests: tuple[str, ...] | tuple[StdioCase, ...]
    setup: str = ""
    name: str = ""

    __test__ = False  # not a pytest class

    def __post_init__(self) -> None:
        check_tests(self.format, self.tests, self.setup)

    def job(self, code: str, name: str = "") -> Job:
        return Job(code=code, format=self.format, tests=self.tests, setup=self.setup, name=name or self.name)


@dataclass(frozen=True)
class Job:
    code: str
    format: Format
    tests: tuple[str, ...] | tuple[StdioCase, ...]
    setup: str = ""  # functional only: runs once after the candidate has loaded, before the tests
    name: str = ""

    def __post_init__(self) -> None:
        if type(self.code) is not str:
            raise MalformedTests(f"the candidate's code must be a string, got {type(self.code).__name__}")
        check_tests(self.format, self.tests, self.setup)

    @property
    def suite(self) -> TestSuite:
        """This job's tests, for ``verify_batch``."""
        return TestSuite(format=self.format, tests=self.tests, setup=self.setup, name=self.name)


def functional_job(code: str, tests: list[str] | tuple[str, ...], setup: str = "", name: str = "") -> Job:
    return Job(code=code, format="functional", tests=tuple(tests), setup=setup, name=name)


def stdio_job(code: str, cases: list[tuple[str, str]] | list[StdioCase], name: str = "") -> Job:
    parsed = []
    for index, case in enumerate(cases):
        if isinstance(case, StdioCase):
            parsed.append(case)
        elif isinstance(case, (tuple, list)) and len(case) == 2:
            parsed.append(StdioCase(input=case[0], output=case[1]))
        else:
            raise MalformedTests(f"stdio test {index} must be an (input, output) pair, got {_show(case)}")
    return Job(code=code, format="stdio", tests=tuple(parsed), name=name)


def check_tests(format: str, tests, setup: str) -> None:
    if format not in FORMATS:
        raise MalformedTests(f"unknown test format {format!r}; use one of {', '.join(FORMATS)}")
    if not isinstance(tests, tuple) or not tests:
        raise MalformedTests("there are no tests: give at least one")
    if format == "stdio":
        if setup:
            raise MalformedTests("stdio tests take no setup")
        for index, case in enumerate(tests):
            _check_case(index, case)
        return
    _check_source("the setup", setup, need_check=False)
    for index, test in enumerate(tests):
        _check_source(f"test {index}", test, need_check=True)


def _check_case(index: int, case) -> None:
    if not isinstance(case, StdioCase):
        raise MalformedTests(f"stdio test {index} must be an input and an output, got {_show(case)}")
    for part in ("input", "output"):
        value = getattr(case, part)
        if type(value) is not str:
            raise MalformedTests(f"stdio test {index}: its {part} must be a string, got {_show(value)}")
        _check_text(f"stdio test {index}'s {part}", value)


def _check_source(what: str, source, need_check: bool) -> None:
    if type(source) is not str:
        raise MalformedTests(f"{what} must be a string of Python, got {_show(source)}")
    _check_text(what, source)
    problem = _source_problem(source, need_check)
    if problem:
        raise MalformedTests(f"{what} {problem}")


@functools.lru_cache(maxsize=4096)  # a batch checks the same tests for every candidate
def _source_problem(source: str, need_check: bool) -> str:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return f"is not valid Python (line {exc.lineno}: {exc.msg})"
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"cannot be compiled ({type(exc).__name__})"
    if need_check and not any(isinstance(node, (ast.Assert, ast.Call, ast.Raise)) for node in ast.walk(tree)):
        return f"checks nothing (no assert, call or raise): {source.strip()[:60]!r}"
    return ""


def _check_text(what: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedTests(f"{what} is not valid text ({exc.reason} at character {exc.start})") from None


def _show(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"
