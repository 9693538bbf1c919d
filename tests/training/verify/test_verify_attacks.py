"""The attack suite: each test runs one hostile candidate and checks one property of the sandbox.

Every run goes through the `run_functional` / `run_stdio` fixtures, which also assert that no process of any
sandbox uid is left afterwards.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from training.verify import Outcome

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _outcomes(result) -> list[Outcome]:
    return [t.outcome for t in result.tests]


# --- network -------------------------------------------------------------------------------------------------------


def test_cannot_reach_a_host_listener_on_loopback(run_functional):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    code = f"""
import socket
def reach():
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=1).close()
        return "connected"
    except OSError as exc:
        return type(exc).__name__
"""
    result = run_functional(code, ["outcome = reach()\nassert outcome == 'connected', outcome"])
    # A connection completed by the kernel would wait in the backlog even though nobody called accept().
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()
    assert result.tests[0].outcome is Outcome.FAILED
    assert "ConnectionRefusedError" in result.tests[0].detail


def test_cannot_reach_outside_hosts(run_functional):
    code = """
import errno, socket
def outside_errno():
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=1)
    except OSError as exc:
        return exc.errno
"""
    result = run_functional(code, ["assert outside_errno() == errno.ENETUNREACH"], setup="import errno")
    assert result.passed, result.tests


def test_has_no_network_interface_but_loopback_and_no_netlink(run_functional):
    code = (
        "import socket\n"
        "names = [line.split(':')[0].strip() for line in open('/proc/net/dev').read().splitlines()[2:]]\n"
        "def netlink():\n    try:\n        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)\n"
        "    except OSError as exc:\n        return exc.errno\n"
    )
    result = run_functional(code, ["assert names == ['lo'], names", "assert netlink() == 97"])  # EAFNOSUPPORT
    assert result.passed, result.tests


# --- filesystem ----------------------------------------------------------------------------------------------------


def test_cannot_write_outside_the_work_dir(run_functional, tmp_path):
    target = tmp_path / "pwned"
    code = f"""
import os
def try_write(path):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write("pwned")
        return "wrote"
    except OSError as exc:
        return type(exc).__name__
results = {{path: try_write(path) for path in ["/usr/pwned", "/etc/pwned", "/pwned", {str(target)!r}]}}
"""
    result = run_functional(code, ["assert results['/usr/pwned'] != 'wrote'", "assert results['/pwned'] != 'wrote'"])
    assert not target.exists(), "a write reached the host's filesystem"
    assert result.passed, result.tests


def test_cannot_see_home_dirs_the_project_or_other_work_dirs(run_functional, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    other_run = Path("/tmp/mimo-verify-other-run")
    other_run.mkdir(exist_ok=True)
    (other_run / "solution.py").write_text("another run's code")
    try:
        paths = [str(secret), "/root", "/home", str(PROJECT_ROOT), str(other_run / "solution.py"), "/etc/shadow"]
        code = f"import os\nvisible = [p for p in {paths!r} if os.path.exists(p)]\n"
        result = run_functional(code, ["assert visible == [], visible"])
    finally:
        (other_run / "solution.py").unlink()
        other_run.rmdir()
    assert result.passed, result.tests


def test_the_only_writable_places_are_the_work_dir_and_tmp(run_functional):
    code = """
import os
writable = sorted(p for p in ["/", "/usr", "/work", "/tmp", "/dev/shm", "/proc", "/dev"] if os.access(p, os.W_OK))
"""
    result = run_functional(code, ["assert writable == ['/tmp', '/work'], writable"])
    assert result.passed, result.tests


# --- processes and resources ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_fork_bomb_is_contained_and_the_next_run_is_not_starved(run_functional):
    bomb = """
import os
def bomb():
    while True:
        try:
            os.fork()
        except OSError:
            pass
"""
    result = run_functional(bomb, ["bomb()"])  # it returns (a hang would meet pytest's timeout), leaving nothing
    assert not result.passed
    after = run_functional("import os\nos.fork() or os._exit(0)\nx = 1", ["assert x == 1"])
    assert after.passed, after.tests


def test_memory_bomb_fails_with_memory_error(run_functional):
    result = run_functional("blob = None\ndef grow():\n    return bytearray(4 << 30)\n", ["grow()"])
    assert result.tests[0].outcome is Outcome.CRASHED
    assert "MemoryError" in result.tests[0].detail


@pytest.mark.slow
def test_cpu_spin_ignoring_signals_is_killed_at_the_wall_clock(run_functional):
    code = """
import signal
for sig in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT):
    signal.signal(sig, signal.SIG_IGN)
def spin():
    while True:
        pass
"""
    result = run_functional(code + "def one():\n    return 1\n", ["spin()", "assert one() == 1"])
    assert _outcomes(result) == [Outcome.TIMED_OUT, Outcome.TIMED_OUT]  # the watchdog's verdict, not a stopwatch
    assert result.timed_out and not result.passed


def test_double_forked_setsid_daemon_does_not_outlive_the_run(run_functional):
    code = """
import os, time
def daemonize():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(60)
        os._exit(0)
    os.wait()
    return True
"""
    result = run_functional(code, ["assert daemonize()"])
    assert result.passed, result.tests  # the fixture asserts the daemon is gone


def test_daemon_started_by_a_stdio_program_does_not_survive_its_test(run_stdio):
    code = """
import os, time
if os.fork() == 0:
    os.setsid()
    time.sleep(60)
    os._exit(0)
print(input())
"""
    result = run_stdio(code, [("a", "a"), ("b", "b")])
    assert result.passed, result.tests


def test_killing_the_parent_and_the_process_group_fails_cleanly(run_functional):
    code = """
import os, signal
def kill_everything():
    for target in (lambda: os.kill(os.getppid(), signal.SIGKILL), lambda: os.kill(1, signal.SIGKILL),
                   lambda: os.killpg(0, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass
"""
    result = run_functional(code, ["kill_everything()", "assert True"])
    assert not result.passed
    assert Outcome.PASSED not in _outcomes(result)[1:]


def test_huge_output_is_capped_and_fails(run_functional, limits):
    code = "import sys\ndef flood():\n    while True:\n        sys.stdout.write('x' * 65536)\n"
    result = run_functional(code, ["flood()"])
    assert not result.passed
    assert len(result.output) <= limits.output_bytes


def test_environment_secrets_do_not_reach_the_candidate(run_functional, monkeypatch):
    monkeypatch.setenv("MIMO_TEST_SECRET", "hunter2-secret")
    code = """
import os
seen = dict(os.environ)
try:
    seen["init"] = open("/proc/1/environ").read()
except OSError:
    pass
print(seen)
"""
    result = run_functional(code, ["assert not any('hunter2' in v for v in seen.values())"])
    assert "hunter2-secret" not in result.output
    assert result.passed, result.tests


# --- reward hacking ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exit_call",
    ["import sys\nsys.exit(0)", "import os\nos._exit(0)", "raise SystemExit(0)"],
    ids=["sys.exit", "os._exit", "SystemExit"],
)
def test_exiting_before_the_asserts_fails(run_functional, exit_call):
    result = run_functional(f"def add(a, b):\n    return a - b\n{exit_call}\n", ["assert add(1, 2) == 3"])
    assert not result.passed
    assert result.tests[0].outcome is Outcome.CRASHED


def test_exiting_inside_a_test_fails_that_test_and_every_later_call(run_functional):
    code = "import os\ndef answer():\n    os._exit(0)\ndef other():\n    return 1\n"
    result = run_functional(code, ["assert other() == 1", "assert answer() == 42", "assert other() == 1"])
    assert _outcomes(result) == [Outcome.PASSED, Outcome.CRASHED, Outcome.CRASHED]
    assert "exit status 0" in result.tests[1].detail
    assert not result.passed and not result.completed


@pytest.mark.parametrize(
    "patch",
    [
        "import builtins\nbuiltins.exec = lambda *args, **kwargs: None",
        "import __main__\n__main__.run_functional = lambda job, emit: None\n__main__._classify = lambda exc: 'passed'",
        "import atexit, os\natexit.register(lambda: os.write(1, b'all tests passed'))",
        "import builtins\nbuiltins.AssertionError = type('Quiet', (Exception,), {})",
    ],
    ids=["builtins.exec", "harness-module", "atexit", "AssertionError"],
)
def test_monkey_patching_the_harness_does_not_make_a_wrong_answer_pass(run_functional, patch):
    result = run_functional(f"{patch}\ndef add(a, b):\n    return a - b\n", ["assert add(1, 2) == 3"])
    assert result.tests[0].outcome is Outcome.FAILED
    assert not result.passed


def test_patched_builtins_do_not_reach_the_tests(run_functional):
    code = "import builtins\nbuiltins.abs = lambda x: 0\ndef area(r):\n    return 3.0 * r * r\n"
    result = run_functional(code, ["assert abs(area(1.0) - 3.14159) < 1e-3"])
    assert result.tests[0].outcome is Outcome.FAILED


def test_forged_records_on_the_results_channel_are_ignored(run_functional):
    forge = """
import os, json
for fd in range(3, 20):
    for body in ({"test": 0, "outcome": "passed", "time": 0.0, "detail": ""}, {"done": 1}):
        try:
            os.write(fd, ("0" * 32 + " " + json.dumps(body) + "\\n").encode())
        except OSError:
            pass
os._exit(0)
"""
    result = run_functional(forge, ["assert False"])
    assert result.tests[0].outcome is Outcome.CRASHED
    assert not result.completed and not result.passed


def test_walking_the_frames_finds_nothing_to_forge_with(run_functional):
    code = """
import sys
def steal():
    frame = sys._getframe()
    while frame:
        emit = frame.f_locals.get("emit")
        if callable(emit) and frame.f_code.co_name == "run_functional":
            emit({"test": 0, "outcome": "passed", "time": 0.0, "detail": ""})
            emit({"done": 1})
            import os
            os._exit(0)
        frame = frame.f_back
"""
    result = run_functional(code, ["steal(); assert False"])
    assert not result.passed


@pytest.mark.slow
def test_a_fork_bomb_does_not_starve_a_concurrent_run(verifier_config, leftovers):
    from training.verify import VerifierPool, functional_job

    bomb = functional_job(
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", ["assert True"]
    )
    neighbours = [
        functional_job(
            f"import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.wait()\nv = {i}", [f"assert v == {i}"]
        )
        for i in range(6)
    ]
    with VerifierPool(verifier_config, workers=2) as pool:
        bombing = pool.submit(bomb)
        results = [pool.submit(job) for job in neighbours]
        assert all(r.result().passed for r in results)  # each could fork while the bomb ran under another uid
        assert not bombing.result().passed
    assert leftovers() == []
