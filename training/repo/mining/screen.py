"""A static screen for a candidate function body before it runs beside the repository's tests.

In a mined task the candidate runs in the same Python process as pytest (the tests call it directly), so it could
reach the test runner's state and forge the outcome: exit early with status 0 (`os._exit(0)`), patch pytest
through `sys.modules` or `gc`, walk frames to the caller's locals, rewrite the results file. Process isolation
cannot stop that without moving each test call out of process (what training/verify does for its own formats;
a repository's tests expect in-process objects). So the verdict of a repo task also requires that the body
uses none of the names those techniques need. It is a screen, not a proof: docs/repo-training.md says what
the verdict can and cannot be trusted for.
"""

from __future__ import annotations

import ast

# Attribute or variable names that exit, introspect or patch the running interpreter.
FORBIDDEN_NAMES = frozenset({
    "_exit", "exit", "quit", "abort", "kill", "killpg", "fork", "forkpty", "execv", "execve", "execvp", "system",
    "popen", "spawnv", "__import__", "importlib", "sys", "gc", "inspect", "ctypes", "builtins", "__builtins__",
    "pytest", "_pytest", "pluggy", "atexit", "signal", "faulthandler", "threading", "multiprocessing", "subprocess",
    "settrace", "setprofile", "_getframe", "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "tb_frame",
    "gi_frame", "cr_frame", "ag_frame", "modules", "exec", "eval", "compile", "globals", "locals", "vars",
    "__code__", "__globals__", "__subclasses__", "__closure__", "__dict__", "__class__", "__bases__", "__mro__",
    "__loader__", "__spec__", "breakpoint", "getattr", "setattr", "delattr", "open", "Thread", "Timer",
    "start_new_thread", "ThreadPoolExecutor", "ProcessPoolExecutor", "Process", "Popen", "concurrent", "_thread",
    "asyncio", "SkipTest", "xfail",
})  # fmt: skip


def screen(body: str) -> str | None:
    """None when the body may run; otherwise the reason it may not (a name it uses, or that it does not parse)."""
    try:
        tree = ast.parse(_dedented(body))
    except (SyntaxError, ValueError) as error:
        return f"the body does not parse: {error.msg if isinstance(error, SyntaxError) else error}"
    for node in ast.walk(tree):
        name = _name_of(node)
        if name in FORBIDDEN_NAMES:
            return f"the body uses {name!r}, which could reach the test runner"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return "the body imports a module (imports belong at the top of the file, outside the task)"
    return None


def _name_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in FORBIDDEN_NAMES:
        return node.value  # getattr(os, "_exit") spelt as a string
    return None


def _dedented(body: str) -> str:
    """The body as a module: wrapped in a function so its indentation and `return` statements parse."""
    return "def _candidate():\n" + ("".join(
        line if line.strip() else "\n" for line in body.splitlines(keepends=True)) or "    pass\n")  # fmt: skip
