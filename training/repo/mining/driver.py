"""Runs pytest inside the sandbox (this file is copied there and run by the user's interpreter): the whole suite
under coverage.py with one coverage context per test, or chosen tests only. Standard library, pytest and
coverage only; it imports nothing from mimo-code.

    python -S driver.py CONFIG.json   CONFIG: {"mode": "coverage" | "tests", "repo": ROOT, "args": [...],
                                               "site_dirs": [...], "marker": "..."}

Prints, as the last line of stdout after pytest returns, the marker and a JSON object: {"collected": N,
"outcomes": {nodeid: "passed" | "failed" | "skipped"}, "exit": code, "coverage": {file: {line: [nodeid, ...]}}}
(coverage: files relative to the repository, lines some test executed). A test is "failed" when any of its phases
(setup, call, teardown) failed. Run with -S: only the given site folders are importable, first.
"""

import json
import os
import site
import sys


class Recorder:
    def __init__(self, cov):
        self.cov = cov
        self.outcomes = {}
        self.collected = 0

    def pytest_collection_finish(self, session):
        self.collected = len(session.items)

    def pytest_runtest_setup(self, item):
        if self.cov is not None:
            self.cov.switch_context(item.nodeid)

    def pytest_runtest_logreport(self, report):
        previous = self.outcomes.get(report.nodeid)
        if report.failed:
            self.outcomes[report.nodeid] = "failed"
        elif report.skipped and previous != "failed":
            self.outcomes[report.nodeid] = "skipped"
        elif report.when == "call" and previous is None:
            self.outcomes[report.nodeid] = "passed"


def main(config_path):
    with open(config_path, encoding="utf-8") as stream:
        config = json.load(stream)
    for directory in config["site_dirs"]:
        site.addsitedir(directory)  # the user's installed packages, .pth files included
    for name in ("setquit", "setcopyright", "sethelper"):  # the builtins -S left out (exit, copyright, help)
        getattr(site, name, lambda: None)()
    sys.path.insert(0, config["repo"])  # as `python -m pytest` run from the repository's root would
    cov = None
    if config["mode"] == "coverage":
        import coverage

        cov = coverage.Coverage(data_file="/tmp/.coverage", include=[config["repo"] + "/*"], config_file=False)
        cov.start()
    import pytest

    recorder = Recorder(cov)
    try:
        code = int(pytest.main(config["args"], plugins=[recorder]))
    finally:
        if cov is not None:
            cov.stop()
            cov.save()
    results = {
        "collected": recorder.collected,
        "outcomes": recorder.outcomes,
        "exit": code,
        "coverage": covered_lines(cov, config["repo"]) if cov is not None else {},
    }
    sys.stdout.flush()
    sys.stdout.write("\n" + config["marker"] + json.dumps(results) + "\n")
    sys.stdout.flush()
    return code


def covered_lines(cov, repo):
    data = cov.get_data()
    lines = {}
    for measured in data.measured_files():
        if not measured.startswith(repo + os.sep):
            continue
        contexts = data.contexts_by_lineno(measured)
        tests = {line: sorted(name for name in names if name) for line, names in contexts.items()}
        lines[os.path.relpath(measured, repo)] = {line: names for line, names in tests.items() if names}
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
