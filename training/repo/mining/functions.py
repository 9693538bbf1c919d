"""Functions in a Python file whose bodies can become a task: where each body starts and ends, the file with
the body cut out, and the file with the body emptied.

A body is the function's statements after its docstring, from the first line of the first statement (its
decorators, if it is a decorated nested definition) to the last line of the last one. Functions defined inside
other functions are part of their parent's body, not tasks of their own. One-line definitions
(`def f(): return 1`) and bodies that share a line with anything else are skipped: a body must be whole lines.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

MIN_BODY_LINES = 2  # a one-line body is mostly a return of an expression the tests spell out
MAX_BODY_LINES = 60


@dataclass(frozen=True)
class FunctionBody:
    qualname: str  # Class.method or function
    start: int  # first body line, 1-based
    end: int  # last body line, inclusive
    indent: str  # the body's indentation

    def prefix(self, text: str) -> str:
        return "".join(text.splitlines(keepends=True)[: self.start - 1])

    def suffix(self, text: str) -> str:
        return "".join(text.splitlines(keepends=True)[self.end :])

    def body(self, text: str) -> str:
        return "".join(text.splitlines(keepends=True)[self.start - 1 : self.end])

    def with_body(self, text: str, body: str) -> str:
        if body and not body.endswith("\n"):
            body += "\n"
        return self.prefix(text) + body + self.suffix(text)

    def emptied(self, text: str) -> str:
        return self.with_body(text, f"{self.indent}pass\n")


def function_bodies(text: str) -> list[FunctionBody]:
    """Every function or method body in `text` that can be cut out as whole lines, in file order."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.splitlines()
    found: list[FunctionBody] = []
    _visit(tree, "", lines, found)
    return sorted(found, key=lambda body: body.start)


def _visit(node: ast.AST, scope: str, lines: list[str], found: list[FunctionBody]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.ClassDef):
            _visit(child, f"{scope}{child.name}.", lines, found)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = _body_of(child, f"{scope}{child.name}", lines)
            if body is not None:
                found.append(body)


def _body_of(function: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, lines: list[str]):
    statements = function.body
    if statements and _is_docstring(statements[0]):
        statements = statements[1:]
    if not statements:
        return None
    first = statements[0]
    start = min([first.lineno, *(d.lineno for d in getattr(first, "decorator_list", []))])
    end = max(s.end_lineno or s.lineno for s in statements)
    line = lines[start - 1]
    indent = line[: len(line) - len(line.lstrip())]
    if start <= function.lineno or not indent or line[: _column(first, start)].strip():
        return None  # the body shares a line with the signature or something else
    if not MIN_BODY_LINES <= end - start + 1 <= MAX_BODY_LINES:
        return None
    return FunctionBody(qualname=qualname, start=start, end=end, indent=indent)


def _column(statement: ast.stmt, start: int) -> int:
    if statement.lineno == start:
        return statement.col_offset
    return min(d.col_offset for d in statement.decorator_list if d.lineno == start) - 1  # the "@"


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )
