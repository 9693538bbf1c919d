"""Host side of a sandboxed pytest run: the work folder, the driver, the mounts, and the results read back.

The repository is bound read-only at its own path and the tests run from its root, so imports resolve as they
do outside; the user's interpreter and virtual environment are bound read-only (their installed dependencies
are visible, nothing can change them). A candidate's version of one file is bound over the original.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from training.repo.mining.sandbox import WORK, Mounts, SandboxLimits, python_mounts, run_sandboxed

DRIVER = Path(__file__).with_name("driver.py")
PYTEST_FLAGS = ("-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}


@dataclass(frozen=True)
class SuiteRun:
    exit_code: int | None
    timed_out: bool
    collected: int
    outcomes: dict[str, str]  # nodeid -> passed / failed / skipped
    coverage_file: Path | None  # coverage mode: the SQLite data (in `work`, which the caller removes)
    output: str


def run_pytest(
    repo: Path, tests: list[str] | None, limits: SandboxLimits, work: Path, overlay: dict[str, str] | None = None
) -> SuiteRun:
    """The whole suite under coverage (`tests` None) or those node ids; `overlay` maps repo-relative paths to
    replacement texts, bound over the originals read-only."""
    repo = repo.resolve()
    mode = "coverage" if tests is None else "tests"
    shutil.copyfile(DRIVER, work / "driver.py")
    files = {}
    for index, (relative, text) in enumerate((overlay or {}).items()):
        replacement = work / f"overlay-{index}.py"
        replacement.write_text(text, encoding="utf-8")
        replacement.chmod(0o444)
        files[str(repo / relative)] = replacement
    config = {
        "mode": mode,
        "repo": str(repo),
        "args": [*(tests if tests is not None else [str(repo)]), "--rootdir", str(repo), *PYTEST_FLAGS],
        "results": f"{WORK}/results.json",
        "data_file": f"{WORK}/coverage.sqlite",
    }
    (work / "config.json").write_text(json.dumps(config), encoding="utf-8")
    mounts = Mounts(read_only=(*python_mounts(), *_repo_mounts(repo)), files=files)
    argv = [sys.executable, f"{WORK}/driver.py", f"{WORK}/config.json"]
    run = run_sandboxed(argv, mounts, work, ENV, limits, cwd=str(repo))
    results = _results(work / "results.json")
    coverage_file = work / "coverage.sqlite" if mode == "coverage" and (work / "coverage.sqlite").exists() else None
    return SuiteRun(run.exit_code, run.timed_out, results.get("collected", 0), results.get("outcomes", {}),
                    coverage_file, run.output)  # fmt: skip


def _repo_mounts(repo: Path) -> tuple[Path, ...]:
    """The repository, unless a mount that is already there (the virtual environment) contains it."""
    return () if any(repo.is_relative_to(path) for path in python_mounts()) else (repo,)


def _results(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("outcomes"), dict):
        return {}
    outcomes = {str(k): v for k, v in data["outcomes"].items() if v in ("passed", "failed", "skipped")}
    collected = data.get("collected") if isinstance(data.get("collected"), int) else 0
    return {"collected": collected, "outcomes": outcomes}


def work_dir() -> Path:
    """A private folder for one run (the caller removes it with shutil.rmtree)."""
    return Path(tempfile.mkdtemp(prefix="mimo-repo-tests-"))
