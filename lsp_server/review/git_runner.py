"""Running git on a repository that may be hostile, with bounded output and time.

A repository that arrives as an archive, a shared folder or a build artifact brings its own ``.git`` folder, and
its config and hooks are as untrusted as its files: several of them make git's read-only commands run programs.
A clone never copies them, but review cannot tell a clone from an unpacked archive. So every git command review
runs goes through ``git`` here, which switches off what runs a program or reaches the network:

- ``core.fsmonitor`` (a command `git diff` runs to ask what changed): off;
- hooks (``post-index-change`` runs when `git diff` refreshes the index): ``core.hooksPath=/dev/null``, and
  ``GIT_OPTIONAL_LOCKS=0`` so a read-only command does not write the index at all;
- filter drivers (``filter.X.clean`` / ``process``, run by `git diff` on each modified file that
  ``.gitattributes`` names): the drivers the repository's own config defines are emptied (the user's global
  ones, git-lfs say, are kept);
- external diff and textconv commands: ``--no-ext-diff --no-textconv`` on every diff;
- transports (a partial clone's promisor remote is fetched from when an object is missing, and an ``ext::``
  URL is a command): ``GIT_ALLOW_PROTOCOL`` allows none, so review never fetches;
- an ``include.path`` naming a FIFO blocks git: every command has a time limit; a ``core.attributesFile``
  naming /dev/zero makes git read until memory runs out: the repository's own is not read, and a
  ``.git/info/attributes`` that is not a regular file (git reads it whatever the settings) is refused; other
  files git reads whole (objects/info/alternates, info/grafts) meet a cap on git's memory.

Why hand-written: GitPython and pygit2 run the same git or libgit2 with the same repository config, and git has
no "ignore the repository's config" switch; the overrides above are git's documented ones.
"""

from __future__ import annotations

import os
import resource
import stat
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from lsp_server.review.diff import DiffError

MAX_OUTPUT_BYTES = 64 * 1024 * 1024  # a bigger diff is not a review; the error says how to narrow it
GIT_TIMEOUT_S = 120
QUICK_TIMEOUT_S = 30  # rev-parse and config answer at once, unless something (a FIFO) blocks them
GIT_MEMORY_BYTES = 2 << 30  # git's heap; a diff review reads (64 MiB of output) needs a small part of it
_SAFE_CONFIG = ("core.fsmonitor=false", "core.hooksPath=/dev/null", "core.quotePath=false")
_SAFE_ENVIRONMENT = {
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_ALLOW_PROTOCOL": "",  # an empty allow-list: no transport, whatever the repository's protocol.* says
    "GIT_NO_LAZY_FETCH": "1",  # git >= 2.44 says so directly
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
}
_REPOSITORY_SCOPES = frozenset({"local", "worktree"})  # the config files inside the repository's .git
_FILTER_COMMANDS = ("clean", "smudge", "process")


class GitError(DiffError):
    """git could not run or failed; the message says what to do."""


class GitFailed(GitError):
    """git ran and exited with an error."""


class TooLarge(Exception):
    """git printed more than the caller's limit."""


def git(root: Path, *args: str, check: bool = True, limit: int | None = None, quick: bool = False) -> bytes:
    """Runs git in ``root`` with the repository's program-running settings off (see the module docstring) and
    returns its stdout: at most ``limit`` bytes (default MAX_OUTPUT_BYTES, else TooLarge), within GIT_TIMEOUT_S
    (QUICK_TIMEOUT_S when ``quick``), else GitError. A failure becomes a GitFailed with git's own message.
    Pathspecs are literal."""
    overrides = ()
    if args[:1] == ("diff",):
        _require_readable_info_attributes(root)
        overrides = _diff_overrides(root)
    timeout = QUICK_TIMEOUT_S if quick else GIT_TIMEOUT_S
    return _run(root, args, overrides, check, MAX_OUTPUT_BYTES if limit is None else limit, timeout)


def git_succeeds(root: Path, *args: str) -> bool:
    """True when the quick git command (rev-parse, say) exits 0; GitError when it cannot run or hangs."""
    try:
        _run(root, args, (), True, MAX_OUTPUT_BYTES, QUICK_TIMEOUT_S)
    except (GitFailed, TooLarge):
        return False
    return True


def _run(
    root: Path, args: Sequence[str], overrides: Sequence[tuple[str, str]], check: bool, limit: int, timeout: float
) -> bytes:
    command = ["git", *(item for setting in _SAFE_CONFIG for item in ("-c", setting)), "--literal-pathspecs"]
    command += ["-C", str(root), *args]
    with tempfile.TemporaryFile() as errors:  # a file, so a chatty stderr never blocks git while we read
        try:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, env=_environment(overrides)
            )
        except FileNotFoundError:
            raise GitFailed("git is not installed; install git or pass --diff FILE") from None
        _cap_memory(process.pid)
        timed_out = threading.Event()
        watchdog = threading.Timer(timeout, lambda: (timed_out.set(), process.kill()))
        watchdog.start()
        try:
            assert process.stdout is not None
            out = process.stdout.read(limit + 1)
            if len(out) > limit:
                process.kill()
                raise TooLarge(f"git {args[0]} printed more than {limit // 1024 // 1024} MiB")
            returncode = process.wait()
        finally:
            watchdog.cancel()
            process.stdout.close()  # type: ignore[union-attr]
            process.wait()
        if timed_out.is_set():
            raise GitError(
                f"git {args[0]} took longer than {timeout:g} s; review a smaller PATH, or look for a file "
                "that blocks in the repository's .git/config (an include.path naming a FIFO)"
            )
        if check and returncode != 0:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip().split("\n")
            raise GitFailed(f"git {args[0]} failed: {message[-1] if message[-1] else returncode}")
    return out


def _cap_memory(pid: int) -> None:
    """Caps git's heap: a file in .git that never ends (objects/info/alternates or info/grafts linked to
    /dev/zero, in a repository of its own) is read whole into memory. Set just after the start (preexec_fn is
    unsafe with threads, and the language server has some): git reads its config first, long before it could
    fill this much. Pack files are mapped read-only and do not count against it."""
    prlimit = getattr(resource, "prlimit", None)
    if prlimit is None:  # not Linux: the time limit still bounds it
        return
    try:
        prlimit(pid, resource.RLIMIT_DATA, (GIT_MEMORY_BYTES, GIT_MEMORY_BYTES))
    except (OSError, ValueError):
        pass  # git already exited, or a hard limit below ours: nothing to tighten


def _environment(overrides: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The caller's environment with git's program-running and network features off, and ``overrides`` as
    config given through GIT_CONFIG_COUNT (any driver name survives it, where ``-c`` would split at '=')."""
    environment = {**os.environ, **_SAFE_ENVIRONMENT}
    count = environment.get("GIT_CONFIG_COUNT", "")
    given = int(count) if count.isdigit() else 0  # the caller's own settings are kept, ours come after
    for number, (key, value) in enumerate(overrides, start=given):
        environment[f"GIT_CONFIG_KEY_{number}"] = key
        environment[f"GIT_CONFIG_VALUE_{number}"] = value
    if overrides:
        environment["GIT_CONFIG_COUNT"] = str(given + len(overrides))
    return environment


def _diff_overrides(root: Path) -> tuple[tuple[str, str], ...]:
    """What `git diff` must not take from the repository's own config (.git/config, config.worktree and what
    they include): empty commands for every filter driver it mentions, and no attributes file it names (one
    naming /dev/zero makes git read until memory runs out)."""
    pattern = r"^(filter\..*|core\.attributesfile)$"
    listing = _run(root, ("config", "--show-scope", "-z", "--get-regexp", pattern), (), False, 1 << 20,
                   QUICK_TIMEOUT_S)  # fmt: skip
    drivers: set[str] = set()
    overrides: list[tuple[str, str]] = []
    fields = listing.split(b"\0")
    for scope, entry in zip(fields[0::2], fields[1::2], strict=False):
        key = entry.split(b"\n", 1)[0].decode("utf-8", "surrogateescape")
        if scope.decode("ascii", "replace") not in _REPOSITORY_SCOPES:
            continue
        if key == "core.attributesfile":
            overrides = [("core.attributesFile", "")]
        elif key.count(".") >= 2:
            drivers.add(key[len("filter.") : key.rindex(".")])
    overrides += [(f"filter.{name}.{command}", "") for name in sorted(drivers) for command in _FILTER_COMMANDS]
    return tuple(overrides + [(f"filter.{name}.required", "false") for name in sorted(drivers)])


def _require_readable_info_attributes(root: Path) -> None:
    """GitError when the repository's info/attributes, which `git diff` always reads and no setting turns off,
    is not a regular file: a link to /dev/zero is read until memory runs out, a FIFO blocks."""
    common = _run(root, ("rev-parse", "--git-common-dir"), (), True, 1 << 16, QUICK_TIMEOUT_S)
    path = Path(root) / os.fsdecode(common.rstrip(b"\n")) / "info" / "attributes"
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # none (or unreachable: git skips it too)
    if not stat.S_ISREG(mode):
        raise GitError(f"{path} is not a regular file (a link to a device, a FIFO?); git would read it for every "
                       "diff: remove it")  # fmt: skip
