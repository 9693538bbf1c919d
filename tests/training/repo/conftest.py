"""Fixtures: small git repositories built in the test (code, tests, and the junk real repositories carry)."""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

MODULE = '''"""Module {index}: small helpers over lists of numbers."""

from __future__ import annotations


def scale_{index}(values: list[float], factor: float = {factor}) -> list[float]:
    """Every value times the factor."""
    result = []
    for value in values:
        result.append(value * factor)
    return result


def total_{index}(values: list[float]) -> float:
    """The sum of the values, starting from {index}."""
    running = {index}
    for value in values:
        running += value
    return running


class Counter{index}:
    """Counts what it is given."""

    def __init__(self) -> None:
        self.seen = {{}}

    def add(self, item: str) -> int:
        count = self.seen.get(item, 0) + 1
        self.seen[item] = count
        return count
'''


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e.x", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@e.x", "PATH": "/usr/bin:/bin", "HOME": str(root)})  # fmt: skip


def make_code_repo(root: Path, modules: int = 14, junk: bool = True) -> Path:
    """A git repository with `modules` similar Python modules and, with `junk`, files the filters must reject."""
    package = root / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""The package."""\n')
    for index in range(modules):
        (package / f"mod{index}.py").write_text(MODULE.format(index=index, factor=index + 2))
    if junk:
        rng = random.Random(0)
        noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789+/=") for _ in range(6000))
        (package / "blob.py").write_text(f'DATA = "{noise}"\n')  # random data: the loss filter's case
        (root / "vendor").mkdir()
        (root / "vendor" / "lib.py").write_text("def vendored():\n    return 1\n")
        (package / "copy.py").write_text(MODULE.format(index=0, factor=2))  # an exact copy of mod0.py
        (package / "image.py").write_bytes(b"\x00\x01\x02binary")
        (root / "untracked.py").write_text("never = 'committed'\n")
    git(root, "init", "-q")
    git(root, "add", *[p for p in ("pkg", "vendor") if (root / p).exists()])
    git(root, "commit", "-q", "-m", "code")
    return root


CALC = '''"""Arithmetic helpers."""


def add(a, b):
    """a + b."""
    total = a + b
    return total


def clamp(value, low, high):
    """value limited to [low, high]."""
    if value < low:
        return low
    if value > high:
        return high
    return value


def describe(value):
    """Unchecked by the tests: they only call it."""
    text = str(value)
    return text


_MEMORY = []


def remember(value):
    """Stores a value for recall()."""
    _MEMORY.append(value)
    return len(_MEMORY)


def recall():
    """The last value stored: its test passes only after another test stored one."""
    last = _MEMORY[-1]
    return last


def reads_file(path):
    """Its body opens a file: the screen refuses it."""
    with open(path) as stream:
        return stream.read()
'''

CALC_TESTS = """from calc import add, clamp, describe, reads_file, recall, remember


def test_add():
    assert add(2, 3) == 5
    assert add(-1, 1) == 0


def test_clamp():
    assert clamp(5, 0, 3) == 3
    assert clamp(-2, 0, 3) == 0
    assert clamp(2, 0, 3) == 2


def test_describe_runs():
    describe(3)


def test_1_remember():
    assert remember(7) >= 1


def test_2_recall():
    assert recall() == 7


def test_reads_file(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("hi")
    assert reads_file(path) == "hi"
"""


def make_tested_repo(root: Path) -> Path:
    """A git repository with a module and a pytest suite: add, clamp and remember make tasks; describe (tests
    pass when emptied), recall (fails alone) and reads_file (screened) are dropped."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "calc.py").write_text(CALC)
    (root / "tests").mkdir()
    (root / "tests" / "test_calc.py").write_text(CALC_TESTS)
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "code and tests")
    return root


@pytest.fixture
def code_repo(tmp_path) -> Path:
    return make_code_repo(tmp_path / "repo")


def readable_dir() -> Path:
    """A temporary folder other uids can read: the sandbox runs tests as an unprivileged uid of its own, and
    pytest's own temporary folders are private to root."""
    path = Path(tempfile.mkdtemp(prefix="mimo-repo-test-"))
    path.chmod(0o755)
    return path


@pytest.fixture
def tested_repo() -> Path:
    root = readable_dir()
    yield make_tested_repo(root / "tested")
    shutil.rmtree(root, ignore_errors=True)
