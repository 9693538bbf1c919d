"""A repository's pytest run in the verifier's sandbox (`training.verify.run_sandboxed`): the mounts, the driver,
and the results read back from its output.

The sandbox is the verifier's: no network, seccomp, a private tmpfs /work and /tmp, a cgroup (or rlimits) for
memory, processes and CPU, and an unprivileged uid of its own when we are root. Bound read-only into it:
- the repository at its own path, and the tests run from its root, so imports resolve as they do outside;
- the user's installed dependencies: the site-packages of the environment `mimo` runs in, added by the driver
  (`site.addsitedir`, so .pth files and editable installs work too);
- an interpreter: the environment's own when the sandbox's uid can read it, else the system's python of the
  same version (a pyenv under /root is out of an unprivileged uid's reach);
- a candidate's version of one file, over the original.
The driver prints its results as the last line of stdout after pytest returns.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import stat
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

from training.errors import UserError
from training.verify import Limits, Mount, run_sandboxed

DRIVER = Path(__file__).with_name("driver.py")
MARKER = "MIMO-REPO-RESULTS "
INSIDE = "/mimo-repo"  # where the driver and its config are bound
PYTEST_FLAGS = ("-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning")
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/work", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
       "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}  # fmt: skip


@dataclass(frozen=True)
class RunLimits:
    timeout_s: float = 600.0
    memory_mb: int = 4096
    processes: int = 256
    tmpfs_mb: int = 512

    def verifier_limits(self) -> Limits:
        # The coverage run prints every covered line's tests: allow a large output.
        return Limits(memory_mb=self.memory_mb, processes=self.processes, tmpfs_mb=self.tmpfs_mb, file_size_mb=256,
                      open_files=1024, output_bytes=256 << 20, cpus=1.0)  # fmt: skip


@dataclass(frozen=True)
class SuiteRun:
    exit_code: int | None
    timed_out: bool
    collected: int
    outcomes: dict[str, str]  # nodeid -> passed / failed / skipped
    coverage: dict[str, dict[int, list[str]]]  # coverage runs: repo-relative file -> line -> covering node ids
    output: str


def run_pytest(
    repo: Path, tests: list[str] | None, limits: RunLimits, overlay: dict[str, str] | None = None
) -> SuiteRun:
    """The whole suite under coverage (`tests` None) or those node ids; `overlay` maps repo-relative paths to
    replacement texts, bound over the originals read-only."""
    repo = repo.resolve()
    if os.geteuid() == 0 and not _world_readable(repo, directory=True):
        raise UserError(
            f"{repo} is not readable by other users, and the tests run as an unprivileged uid of their own: "
            "make it readable (chmod o+rX on it and the folders above) or copy it somewhere that is"
        )
    inside = inside_path(repo)
    python, interpreter_mounts = sandbox_python()
    host = Path(tempfile.mkdtemp(prefix="mimo-repo-run-"))
    try:
        host.chmod(0o755)  # the sandbox's uid reads it
        mounts = [Mount(str(host), INSIDE), *interpreter_mounts, *_repo_mounts(repo, inside)]
        mounts += _overlay_mounts(inside, host, overlay or {})
        site_inside = [inside_path(Path(path)) for path in site_dirs()]
        config = {"mode": "coverage" if tests is None else "tests", "repo": inside, "site_dirs": site_inside,
                  "args": [*(tests if tests is not None else [inside, "--continue-on-collection-errors"]),
                           "--rootdir", inside, *PYTEST_FLAGS],
                  "marker": MARKER}  # fmt: skip
        (host / "config.json").write_text(json.dumps(config), encoding="utf-8")
        shutil.copyfile(DRIVER, host / "driver.py")
        _readable(host / "config.json", host / "driver.py")
        command = [python, "-S", f"{INSIDE}/driver.py", f"{INSIDE}/config.json"]
        result = run_sandboxed(command, mounts=mounts, cwd=inside, env=ENV, timeout_s=limits.timeout_s,
                               limits=limits.verifier_limits())  # fmt: skip
    finally:
        shutil.rmtree(host, ignore_errors=True)
    output = result.stdout.decode("utf-8", "replace")
    results = _results(output)
    tail = (output[-4000:] + result.stderr.decode("utf-8", "replace")[-4000:]).strip()
    return SuiteRun(result.exit_code, result.timed_out, results.get("collected", 0), results.get("outcomes", {}),
                    results.get("coverage", {}), tail)  # fmt: skip


def sandbox_python() -> tuple[str, list[Mount]]:
    """The interpreter to run inside and what it needs mounted (see the module docstring)."""
    own = Path(os.path.realpath(sys.executable))
    prefix = own.parent.parent
    if os.geteuid() != 0 or _world_readable(own):
        if prefix.is_relative_to("/tmp") or prefix.is_relative_to("/work"):
            raise UserError(f"the interpreter {own} lives under /tmp or /work, which the sandbox replaces")
        return str(own), ([] if prefix.is_relative_to("/usr") else [Mount(str(prefix))])
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path("/usr/bin") / version, Path("/usr/local/bin") / version):
        if candidate.is_file() and _world_readable(candidate.resolve()):
            system_prefix = candidate.resolve().parent.parent
            return str(candidate), ([] if system_prefix.is_relative_to("/usr") else [Mount(str(system_prefix))])
    raise UserError(
        f"{own} is out of reach of the sandbox's unprivileged uid and there is no system {version}; install "
        f"{version} (Debian: apt-get install {version}) or run from an environment other users can read"
    )


def site_dirs() -> list[str]:
    """The site-packages of the environment `mimo` runs in: the user's installed dependencies."""
    found = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return list(dict.fromkeys(str(Path(path).resolve()) for path in found if Path(path).is_dir()))


def _world_readable(path: Path, directory: bool = False) -> bool:
    """True when another uid can reach and read `path` (every folder above it searchable)."""
    try:
        wanted = stat.S_IROTH | (stat.S_IXOTH if directory else 0)
        if os.stat(path).st_mode & wanted != wanted:
            return False
        return all(os.stat(parent).st_mode & stat.S_IXOTH for parent in path.parents)
    except OSError:
        return False


def inside_path(path: Path) -> str:
    """Where a host path appears in the sandbox: at its own path, unless that is under /tmp or /work, the
    sandbox's own tmpfs; then under /mimo-host (the tests still run from the repository's root, so imports
    resolve; only a .pth file naming an absolute path there would not)."""
    path = Path(path)
    return "/mimo-host" + str(path) if path.is_relative_to("/tmp") or path.is_relative_to("/work") else str(path)


def _repo_mounts(repo: Path, inside: str) -> list[Mount]:
    """The site-packages folders, then the repository unless one of them holds it already."""
    roots = [Path(path) for path in site_dirs()]
    mounts = [Mount(str(path), inside_path(path)) for path in roots]
    if not any(repo.is_relative_to(path) for path in roots):
        mounts.append(Mount(str(repo), inside))
    return mounts


def _overlay_mounts(repo: str, host: Path, overlay: dict[str, str]) -> list[Mount]:
    mounts = []
    for index, (relative, text) in enumerate(overlay.items()):
        replacement = host / f"overlay-{index}.py"
        replacement.write_text(text, encoding="utf-8")
        _readable(replacement)
        mounts.append(Mount(str(replacement), f"{repo}/{relative}"))
    return mounts


def _readable(*paths: Path) -> None:
    for path in paths:
        path.chmod(0o444)


def _results(output: str) -> dict:
    """The driver's results: its last marker line (a candidate printing one earlier cannot override it)."""
    lines = [line for line in output.splitlines() if line.startswith(MARKER)]
    if not lines:
        return {}
    try:
        data = json.loads(lines[-1][len(MARKER) :])
    except ValueError:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("outcomes"), dict):
        return {}
    outcomes = {str(k): v for k, v in data["outcomes"].items() if v in ("passed", "failed", "skipped")}
    collected = data.get("collected") if isinstance(data.get("collected"), int) else 0
    coverage = data.get("coverage") if isinstance(data.get("coverage"), dict) else {}
    return {"collected": collected, "outcomes": outcomes, "coverage": coverage}
