"""`mimo train repo PATH --tasks OUT.jsonl`: RL tasks from a repository's own tests.

1. Run the whole test suite under coverage.py in the sandbox, one coverage context per test (the driver).
2. For every function body in the repository's non-test Python files (functions.py), the passing tests that
   executed a line of it are its covering tests; the `max_tests` that executed most of its lines become the
   task's tests.
3. Self-test each candidate the way a candidate is verified (tasks.verify_completion): it is kept only if its
   original body passes and an emptied body (`pass`) fails. Everything else is dropped with its reason.
4. Write the kept tasks (format "repo", tasks.py) and OUT.report.json: found, kept, dropped by reason, and a
   line per candidate.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from training.errors import UserError
from training.repo.mining.functions import FunctionBody, function_bodies
from training.repo.mining.runner import RunLimits, run_pytest
from training.repo.mining.screen import screen
from training.repo.mining.tasks import RepoTask, run_tests, verify_completion

TEST_DIRS = {"test", "tests", "testing"}


@dataclass(frozen=True)
class MineOptions:
    repo: Path
    out: Path
    max_candidates: int = 400
    max_tests: int = 8
    suite_timeout_s: float = 1800.0
    task_timeout_s: float = 120.0
    jobs: int = 2  # sandboxed runs at a time
    show_progress: bool = True


def mine(options: MineOptions, say=lambda message: None) -> dict:
    repo = Path(options.repo).resolve()
    if not repo.is_dir():
        raise UserError(f"{options.repo} is not a folder; give the repository's root")
    say(f"running the test suite of {repo} under coverage in the sandbox")
    passed, lines_by_file, suite = _suite_coverage(repo, options)
    found, candidates = _candidates(repo, lines_by_file, passed, options)
    say(f"{found} functions whose bodies the passing tests execute; self-testing {len(candidates)}")
    kept, decisions = _self_test(candidates, options)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    with options.out.open("w", encoding="utf-8") as stream:
        for task in kept:
            stream.write(json.dumps(task.to_json(), ensure_ascii=False) + "\n")
    dropped = Counter(decision["reason"] for decision in decisions if decision["reason"] != "kept")
    report = {"repo": str(repo), "tasks": str(options.out), "suite": suite, "found": found,
              "checked": len(candidates), "kept": len(kept), "dropped": dict(dropped.most_common()),
              "decisions": decisions}  # fmt: skip
    report_path = options.out.with_name(options.out.name + ".report.json")
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return {key: value for key, value in report.items() if key != "decisions"} | {"report": str(report_path)}


def is_test_file(path: str) -> bool:
    pure = PurePosixPath(path)
    return (
        bool(TEST_DIRS & set(pure.parts[:-1]))
        or pure.name.startswith("test_")
        or pure.name.endswith("_test.py")
        or pure.name == "conftest.py"
    )


def _suite_coverage(repo: Path, options: MineOptions) -> tuple[set[str], dict[str, dict[int, set[str]]], dict]:
    """The passing tests, and per repository-relative source file each line's covering passing tests."""
    run = run_pytest(repo, None, RunLimits(timeout_s=options.suite_timeout_s))
    if run.timed_out:
        raise UserError(f"the test suite ran past {options.suite_timeout_s:.0f} s in the sandbox")
    passed = {test for test, outcome in run.outcomes.items() if outcome == "passed"}
    if not passed:
        tail = run.output.strip().splitlines()[-3:]
        raise UserError(f"the test suite of {repo} passed no test in the sandbox (it said: {' | '.join(tail)})")
    lines_by_file = {
        relative: {int(line): set(tests) & passed for line, tests in lines.items()}
        for relative, lines in run.coverage.items()
        if relative.endswith(".py") and not is_test_file(relative)
    }
    counts = Counter(run.outcomes.values())
    suite = {"collected": run.collected, "passed": counts["passed"], "failed": counts["failed"],
             "skipped": counts["skipped"], "exit": run.exit_code}  # fmt: skip
    return passed, lines_by_file, suite


def _candidates(repo: Path, lines_by_file: dict, passed: set[str], options: MineOptions) -> tuple[int, list[RepoTask]]:
    """(how many functions the tests exercise, the first `max_candidates` of them taken a file at a time: every
    file's first covered function, then every file's second, ..., so a cap samples the whole repository)."""
    per_file = []
    for relative in sorted(lines_by_file):
        text = (repo / relative).read_text(encoding="utf-8", errors="replace")
        tasks = []
        for body in function_bodies(text):
            tests = _covering_tests(body, lines_by_file[relative], options.max_tests)
            if tests:
                tasks.append(_task(repo, relative, text, body, tests))
        per_file.append(tasks)
    interleaved = [tasks[rank] for rank in range(max(map(len, per_file), default=0)) for tasks in per_file
                   if rank < len(tasks)]  # fmt: skip
    return len(interleaved), interleaved[: options.max_candidates]


def _covering_tests(body: FunctionBody, lines: dict[int, set[str]], limit: int) -> tuple[str, ...]:
    """The tests that executed most of the body's lines (ties by node id)."""
    counts = Counter(test for line in range(body.start, body.end + 1) for test in lines.get(line, ()))
    ranked = sorted(counts, key=lambda test: (-counts[test], test))
    return tuple(sorted(ranked[:limit]))


def _task(repo: Path, relative: str, text: str, body: FunctionBody, tests: tuple[str, ...]) -> RepoTask:
    prefix = body.prefix(text)
    return RepoTask(
        id=f"{relative}::{body.qualname}", prompt=prefix, tests=tests, solution=prefix.rstrip() + "\n" + body.body(text),
        source=f"repo/{repo.name}", repo=str(repo), path=relative, function=body.qualname,
        lines=(body.start, body.end), suffix=body.suffix(text), indent=body.indent, python=sys.executable,
    )  # fmt: skip


def _self_test(candidates: list[RepoTask], options: MineOptions) -> tuple[list[RepoTask], list[dict]]:
    """Each candidate judged in the sandbox, `jobs` at a time (each run is a process of its own)."""
    from concurrent.futures import ThreadPoolExecutor

    from training.data.progress import progress_bar

    limits = RunLimits(timeout_s=options.task_timeout_s)
    first_ids = {}
    for task in candidates:
        first_ids.setdefault(task.id, task)
    verdicts: dict[int, tuple[str, str]] = {}
    with progress_bar("self-test", len(candidates), unit="tasks") as advance, ThreadPoolExecutor(options.jobs) as pool:

        def judge(task: RepoTask) -> tuple[str, str]:
            try:
                if first_ids[task.id] is not task:
                    return "duplicate-id", "another function of the same name in this file comes first"
                return _judge(task, limits)
            finally:
                advance(1)

        for task, verdict in zip(candidates, pool.map(judge, candidates)):
            verdicts[id(task)] = verdict
    kept, decisions = [], []
    for task in candidates:
        reason, detail = verdicts[id(task)]
        decisions.append({"id": task.id, "tests": len(task.tests), "reason": reason, "detail": detail})
        if reason == "kept":
            kept.append(task)
    return kept, decisions


def _judge(task: RepoTask, limits: RunLimits) -> tuple[str, str]:
    if reason := screen(task.reference_completion.split("\n", 1)[1]):
        return "screen", reason  # the original itself would fail the verifier's screen
    original = verify_completion(task, task.reference_completion, limits)
    if not original.passed:
        return "original-fails", original.detail
    emptied = run_tests(task, task.file_text("\n" + task.indent + "pass\n"), limits)
    if emptied.passed:
        return "emptied-passes", "the tests pass with an empty body: they do not check this function"
    return "kept", ""
