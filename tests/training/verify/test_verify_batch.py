"""The batch interface for RL: many candidates against one problem's tests, per-test results in input order."""

from __future__ import annotations

import pytest

from training.verify import Outcome, TestSuite, VerifierPool, functional_job, stdio_job, verify_batch

ADD_TESTS = ["assert add(1, 2) == 3", "assert add(2, 0) == 2"]


def test_batch_results_come_back_in_input_order_with_per_test_outcomes(verifier_config):
    suite = functional_job("", ADD_TESTS, name="add").suite
    codes = [
        "def add(a, b):\n    return a + b\n",
        "def add(a, b):\n    return a - b\n",
        "def add(a, b) return",
        "def add(a, b):\n    return 3\n",
    ]
    results = verify_batch(suite, codes, verifier_config)
    assert [r.name for r in results] == ["add#0", "add#1", "add#2", "add#3"]
    assert [r.passed for r in results] == [True, False, False, False]
    assert [[t.outcome for t in r.tests] for r in results] == [
        [Outcome.PASSED, Outcome.PASSED],
        [Outcome.FAILED, Outcome.PASSED],
        [Outcome.CRASHED, Outcome.CRASHED],
        [Outcome.PASSED, Outcome.FAILED],
    ]


def test_batch_on_a_long_lived_pool_and_stdio(verifier_config):
    suite = TestSuite(format="stdio", tests=stdio_job("", [("2", "4"), ("3", "6")]).tests, name="double")
    codes = ["print(2 * int(input()))", "print(int(input()) + 2)", "import sys\nsys.exit(3)"]
    with VerifierPool(verifier_config, workers=2) as pool:
        first = verify_batch(suite, codes, pool=pool)
        again = pool.verify_batch(suite, codes[:1])
    assert [r.pass_fraction for r in first] == [1.0, 0.5, 0.0]
    assert again[0].passed


# --- a batch reuses one candidate sandbox per worker: nothing of one candidate may reach the next ------------------

HONEST = "def add(a, b):\n    return a + b\n"
ASKS_THE_LAST_ONE = (
    "import os, socket\n"
    "def add(a, b):\n"
    "    for path in ('/work/answers', '/tmp/answers'):\n"
    "        if os.path.exists(path):\n"
    "            return eval(open(path).read())[(a, b)]\n"
    "    try:\n"
    "        s = socket.socket(socket.AF_UNIX)\n"
    "        s.connect('\\0mimo-answers')\n"
    "        return int(s.recv(100))\n"
    "    except OSError:\n"
    "        return -1\n"
)
LEAVES_ANSWERS = HONEST + (
    "import os, socket, time\n"
    "open('/work/answers', 'w').write(repr({(1, 2): 3, (2, 0): 2}))\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    server = socket.socket(socket.AF_UNIX)\n"
    "    server.bind('\\0mimo-answers')\n"
    "    server.listen()\n"
    "    while True:\n"
    "        conn, _ = server.accept()\n"
    "        conn.send(b'3')\n"
)
SABOTEURS = {
    "stops-the-agent": HONEST + "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n",
    "kills-the-agent": HONEST + "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
    "lowers-the-agent-limits": HONEST
    + "import os, resource\ntry:\n    resource.prlimit(os.getppid(), resource.RLIMIT_NPROC, (1, 1))\n"
    "except OSError:\n    pass\n",
    "leaves-a-fork-bomb": HONEST
    + "import os\nif os.fork() == 0:\n    os.setsid()\n    while True:\n        try:\n            os.fork()\n"
    "        except OSError:\n            pass\n",
    "renices-the-agent": HONEST + "import os\ntry:\n    os.setpriority(os.PRIO_PROCESS, os.getppid(), 19)\n"
    "except OSError:\n    pass\n",
}


@pytest.fixture
def one_worker(verifier_config):
    with VerifierPool(verifier_config, workers=1) as pool:
        yield pool


def test_a_candidate_cannot_hand_answers_to_the_next_one(one_worker):
    suite = functional_job("", ADD_TESTS, name="add").suite
    results = one_worker.verify_batch(suite, [LEAVES_ANSWERS, ASKS_THE_LAST_ONE, LEAVES_ANSWERS, ASKS_THE_LAST_ONE])
    assert [r.passed for r in results] == [True, False, True, False], [r.tests for r in results]


@pytest.mark.parametrize("saboteur", sorted(SABOTEURS))
def test_sabotaging_the_sandbox_does_not_change_the_next_candidates_verdict(one_worker, saboteur):
    suite = functional_job("", ADD_TESTS, name="add").suite
    codes = [SABOTEURS[saboteur], HONEST, "def add(a, b):\n    return 0\n", HONEST]
    results = one_worker.verify_batch(suite, codes)
    assert [r.passed for r in results[1:]] == [True, False, True], [r.tests for r in results]


def test_the_batch_reuses_its_sandbox(one_worker):
    suite = functional_job("", ADD_TESTS, name="add").suite
    (worker,) = one_worker._held
    before = worker.agents_started
    results = one_worker.verify_batch(suite, [HONEST] * 5)
    assert all(r.passed for r in results)
    assert worker.agents_started - before == 1


def test_a_stdio_batch_keeps_programs_apart(one_worker):
    leaves = "open('/work/out', 'w').write('4')\nprint(2 * int(input()))\n"
    reads = "import os\nn = input()\nprint(open('/work/out').read() if os.path.exists('/work/out') else 0)\n"
    suite = stdio_job("", [("2", "4")]).suite
    results = one_worker.verify_batch(suite, [leaves, reads, leaves, reads])
    assert [r.passed for r in results] == [True, False, True, False]
