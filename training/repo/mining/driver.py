"""Runs pytest inside the sandbox (this file is copied there and run by the user's interpreter): the whole suite
under coverage.py with one coverage context per test, or chosen tests only. Standard library, pytest and
coverage only; it imports nothing from mimo-code.

    python driver.py CONFIG.json      CONFIG: {"mode": "coverage" | "tests", "repo": ROOT, "args": [...],
                                               "results": PATH, "data_file": PATH}

Writes `results` as JSON: {"collected": N, "outcomes": {nodeid: "passed" | "failed" | "skipped"}, "exit": code}.
A test is "failed" when any of its phases (setup, call, teardown) failed.
"""

import json
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
    sys.path.insert(0, config["repo"])  # as `python -m pytest` run from the repository's root would
    cov = None
    if config["mode"] == "coverage":
        import coverage

        cov = coverage.Coverage(data_file=config["data_file"], include=[config["repo"] + "/*"], config_file=False)
        cov.start()
    import pytest

    recorder = Recorder(cov)
    try:
        code = int(pytest.main(config["args"], plugins=[recorder]))
    finally:
        if cov is not None:
            cov.stop()
            cov.save()
    results = {"collected": recorder.collected, "outcomes": recorder.outcomes, "exit": code}
    with open(config["results"], "w", encoding="utf-8") as stream:
        json.dump(results, stream)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
