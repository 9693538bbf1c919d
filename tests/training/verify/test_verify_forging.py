"""Each technique issue 14 found for forging a verdict or escaping a limit, as a test.

Every test here failed on the verifier before the trust boundary (the candidate shared the harness's process,
the stdio program could read the harness's memory, limits were per process): run against commit 5ce6598, each
one reports the forged pass or the escaped limit. They use only the API both versions share.
"""

from __future__ import annotations

import dataclasses
import platform

import pytest

from training.verify import Outcome, functional_job, verify

WRONG_ADD = "def add(a, b):\n    return a - b\n"


def _nothing_passed_that_should_not(result) -> None:
    assert not result.passed, result.tests
    assert result.tests[0].outcome is not Outcome.PASSED, result.tests


# --- functional: the candidate shared the harness's process ------------------------------------------------------


def test_walking_the_frames_to_the_emitter(run_functional):
    code = WRONG_ADD + (
        "import sys, os\n"
        "frame = sys._getframe()\n"
        "while frame:\n"
        "    emit = frame.f_locals.get('emit')\n"
        "    if callable(emit):\n"
        "        emit({'test': 0, 'outcome': 'passed', 'time': 0.0, 'detail': ''})\n"
        "        emit({'done': 1})\n"
        "        os._exit(0)\n"
        "    frame = frame.f_back\n"
    )
    _nothing_passed_that_should_not(run_functional(code, ["assert add(1, 2) == 3"]))


def test_replacing_the_list_of_tests_found_with_gc(run_functional):
    code = WRONG_ADD + (
        "import gc\n"
        "for obj in gc.get_objects():\n"
        "    if type(obj) is list and obj and all(type(t) is str and 'assert' in t for t in obj):\n"
        "        obj[:] = ['pass'] * len(obj)\n"
    )
    _nothing_passed_that_should_not(run_functional(code, ["assert add(1, 2) == 3"]))


def test_patching_the_harness_copy_of_the_builtins(run_functional):
    code = (
        "import builtins, gc\n"
        "for obj in gc.get_objects():\n"
        "    if type(obj) is dict and 'abs' in obj and obj is not builtins.__dict__:\n"
        "        obj['abs'] = lambda x: 0\n"
        "def area(r):\n    return 3.0 * r * r\n"
    )
    _nothing_passed_that_should_not(run_functional(code, ["assert abs(area(1.0) - 3.14159) < 1e-3"]))


@pytest.mark.parametrize(
    "shadow, test",
    [
        ("def abs(x):\n    return 0\n", "assert abs(area(1.0) - 3.14159) < 1e-3"),
        ("def sorted(x):\n    return [1, 2, 3]\n", "assert sorted(area(1.0)) == [1, 2, 3]"),
        ("def isinstance(*a):\n    return True\n", "assert isinstance(area(1.0), list)"),
    ],
    ids=["abs", "sorted", "isinstance"],
)
def test_module_level_names_shadowing_builtins_in_the_tests(run_functional, shadow, test):
    code = shadow + "def area(r):\n    return 3.0 * r * r\n"
    _nothing_passed_that_should_not(run_functional(code, [test]))


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="PyConfig layout of CPython")
def test_setting_the_optimize_flag_through_ctypes_so_asserts_vanish(run_functional):
    config_fields = [
        "_config_init", "isolated", "use_environment", "dev_mode", "install_signal_handlers", "use_hash_seed",
        ("hash_seed", "c_ulong"), "faulthandler", "tracemalloc", "import_time", "code_debug_ranges",
        "show_ref_count", "dump_refs", ("dump_refs_file", "c_void_p"), "malloc_stats",
        ("filesystem_encoding", "c_void_p"), ("filesystem_errors", "c_void_p"), ("pycache_prefix", "c_void_p"),
        "parse_argv", ("orig_argv", "L"), ("argv", "L"), ("xoptions", "L"), ("warnoptions", "L"), "site_import",
        "bytes_warning", "warn_default_encoding", "inspect", "interactive", "optimization_level",
    ]  # fmt: skip
    code = WRONG_ADD + (
        "import ctypes\n"
        "class L(ctypes.Structure):\n"
        "    _fields_ = [('n', ctypes.c_ssize_t), ('items', ctypes.c_void_p)]\n"
        f"spec = {config_fields!r}\n"
        "fields = [(f, ctypes.c_int) if isinstance(f, str) else (f[0], L if f[1] == 'L' else getattr(ctypes, f[1]))"
        " for f in spec]\n"
        "Config = type('Config', (ctypes.Structure,), {'_fields_': fields})\n"
        "api = ctypes.pythonapi\n"
        "api._PyInterpreterState_GetConfig.restype = ctypes.POINTER(Config)\n"
        "api._PyInterpreterState_GetConfig.argtypes = [ctypes.c_void_p]\n"
        "api.PyInterpreterState_Get.restype = ctypes.c_void_p\n"
        "api._PyInterpreterState_GetConfig(api.PyInterpreterState_Get()).contents.optimization_level = 1\n"
    )
    _nothing_passed_that_should_not(run_functional(code, ["assert add(1, 2) == 3"]))


def test_objects_whose_eq_is_always_true(run_functional):
    code = (
        "class Anything:\n"
        "    def __eq__(self, other):\n        return True\n"
        "    __hash__ = object.__hash__\n"
        "def add(a, b):\n    return Anything()\n"
    )
    result = run_functional(code, ["assert add(1, 2) == 3"])
    _nothing_passed_that_should_not(result)
    assert "only plain data crosses" in result.tests[0].detail


def test_an_int_subclass_whose_eq_is_always_true(run_functional):
    code = "class Int(int):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Int(0)\n"
    _nothing_passed_that_should_not(run_functional(code, ["assert add(1, 2) == 3"]))


def test_patching_a_module_the_tests_import(run_functional):
    code = "import math\nmath.isclose = lambda *a, **k: True\ndef area(r):\n    return 3.0 * r * r\n"
    _nothing_passed_that_should_not(
        run_functional(code, ["assert math.isclose(area(1.0), 3.14159, rel_tol=1e-4)"], setup="import math")
    )


def test_reading_the_job_file_to_learn_the_expected_values(run_functional):
    code = (
        "import marshal, os, re\n"
        "answers = {}\n"
        "for root in ('/work', '/tmp', os.getcwd()):\n"
        "    for name in os.listdir(root) if os.path.isdir(root) else []:\n"
        "        try:\n"
        "            job = marshal.loads(open(os.path.join(root, name), 'rb').read())\n"
        "        except Exception:\n"
        "            continue\n"
        "        for test in job.get('tests', []) if isinstance(job, dict) else []:\n"
        "            for args, value in re.findall(r'secret\\((\\d+)\\) == (\\d+)', str(test)):\n"
        "                answers[int(args)] = int(value)\n"
        "def secret(n):\n    return answers.get(n, -1)\n"
    )
    result = run_functional(code, ["assert secret(2) == 7", "assert secret(5) == 11"])
    assert not result.passed and Outcome.PASSED not in [t.outcome for t in result.tests], result.tests


# --- stdio: the program could read the harness's memory and rewrite its records ----------------------------------

PROC_MEM_FORGER = r"""
import os, re, sys
n = int(input())
if n == 1:  # the first test is answered honestly, with trailing spaces that make its record long
    print(2 * n, " " * 400)
    sys.exit(0)
try:
    from _blake2 import blake2b
    parent = os.getppid()
    argv = open(f"/proc/{parent}/cmdline", "rb").read().split(b"\0")
    fd = int(argv[6])
    records = open(f"/proc/{parent}/fd/{fd}", "rb").read()
    mac, _, body = records.split(b"\n")[0].partition(b" ")
    key = None
    memory = open(f"/proc/{parent}/mem", "rb", 0)
    for line in open(f"/proc/{parent}/maps").read().splitlines():
        span, perms = line.split()[:2]
        start, end = (int(x, 16) for x in span.split("-"))
        if not perms.startswith("rw") or end - start > (256 << 20):
            continue
        try:
            memory.seek(start)
            data = memory.read(end - start)
        except OSError:
            continue
        for match in re.finditer(rb"\x20\x00\x00\x00\x00\x00\x00\x00", data):
            candidate = data[match.start() + 16 : match.start() + 48]
            if len(candidate) == 32 and blake2b(body, key=candidate, digest_size=16).hexdigest().encode() == mac:
                key = candidate
                break
        if key:
            break
    def record(fields):
        text = repr(fields).encode()
        return blake2b(text, key=key, digest_size=16).hexdigest().encode() + b" " + text
    forged = record({"test": 0, "outcome": "passed", "time": 0.0, "detail": ""}) + b"\n"
    forged += record({"test": 1, "outcome": "passed", "time": 0.0, "detail": ""}) + b"\n"
    with open(f"/proc/{parent}/fd/{fd}", "r+b") as channel:
        channel.write(forged + b"x" * (len(records) - len(forged)))
except Exception as exc:
    print(type(exc).__name__, file=sys.stderr)
print(-1)  # the wrong answer
"""


def test_a_stdio_program_reading_the_harness_memory_and_rewriting_its_records(run_stdio):
    result = run_stdio(PROC_MEM_FORGER, [("1", "2"), ("5", "10")])
    assert not result.passed
    assert result.tests[1].outcome is not Outcome.PASSED, result.tests


@pytest.mark.parametrize(
    "printed, expected",
    [
        ("100000000000000000007", "100000000000000000000"),  # the last digits of a large integer wrong
        ("9007199254740993", "9007199254740992"),  # above 2^53, distinct integers were equal as floats
        ("1_2", "12"),
        ("12.0000001", "12"),
    ],
)
def test_loose_stdio_comparison(run_stdio, printed, expected):
    result = run_stdio(f"print({printed!r})", [("", expected)])
    assert result.tests[0].outcome is Outcome.FAILED, result.tests


# --- limits: per process, not per run ----------------------------------------------------------------------------


def test_many_processes_under_the_address_space_limit_do_not_add_up_past_the_run_memory(verifier_config):
    limits = dataclasses.replace(verifier_config.limits, memory_mb=300, test_timeout_s=10.0, max_run_s=20.0)
    config = dataclasses.replace(verifier_config, limits=limits)
    code = (
        "import os, time\n"
        "def spread():\n"
        "    pids = []\n"
        "    for _ in range(5):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            try:\n"
        "                block = bytearray(120 << 20)\n"
        "                time.sleep(1.0)\n"
        "                os._exit(0)\n"
        "            except MemoryError:\n"
        "                os._exit(1)\n"
        "        pids.append(pid)\n"
        "    return sum(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) == 0 for p in pids)\n"
    )
    result = verify(functional_job(code, ["assert spread() == 5"]), config)
    assert result.tests[0].outcome is Outcome.FAILED, result.tests  # 600 MB did not fit in 300


def test_files_in_the_work_dir_are_bounded_in_total(run_functional):
    code = (
        "import os\n"
        "def fill():\n"
        "    written = 0\n"
        "    try:\n"
        "        for i in range(100):\n"
        "            with open(f'/tmp/chunk{i}', 'wb') as handle:\n"
        "                handle.write(b'x' * (1 << 20))\n"
        "            written += 1\n"
        "    except OSError:\n"
        "        pass\n"
        "    return written\n"
    )
    result = run_functional(code, ["assert fill() == 100"])  # 100 MiB, each file under the 16 MiB file limit
    assert result.tests[0].outcome is Outcome.FAILED, result.tests


def test_nested_user_namespaces_are_refused(run_functional):
    code = (
        "import ctypes, os\n"
        "def nest():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        os._exit(0 if libc.unshare(0x10000000) == 0 else 1)\n"  # CLONE_NEWUSER
        "    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0\n"
    )
    assert run_functional(code, ["assert nest()"]).tests[0].outcome is Outcome.FAILED


def test_netlink_sockets_are_refused(run_functional):
    code = (
        "import socket\n"
        "def netlink():\n"
        "    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close()\n"
        "    return True\n"
    )
    assert run_functional(code, ["assert netlink()"]).tests[0].outcome is not Outcome.PASSED


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 syscall numbers")
@pytest.mark.parametrize(
    "name, number",
    [
        ("ptrace", 101),
        ("keyctl", 250),
        ("perf_event_open", 298),
        ("setns", 308),
        ("process_vm_readv", 310),
        ("bpf", 321),
        ("io_uring_setup", 425),
    ],
)
def test_the_seccomp_filter_denies_kernel_interfaces(run_functional, name, number):
    code = (
        "import ctypes\n"
        "def call():\n"
        "    libc = ctypes.CDLL(None, use_errno=True)\n"
        f"    result = libc.syscall({number}, 0, 0, 0, 0, 0)\n"
        "    return ctypes.get_errno() if result == -1 else 0\n"
    )
    assert run_functional(code, ["assert call() == 1, call()"]).passed  # EPERM, from the filter


def test_the_json_output_says_which_protections_were_active(run_functional):
    data = run_functional("x = 1", ["assert x == 1"]).to_json()
    protections = data.get("protections") or {}
    assert protections.get("seccomp") is True and protections.get("work_tmpfs_mb")


def test_redefining_a_helper_the_tests_call(verifier_config):
    """HumanEval/32's check calls the prompt's ``poly``: a completion that redefines it as 0 'finds' every zero."""
    from training.verify.humaneval import job_for, load_problems

    problem = next(p for p in load_problems() if p.task_id == "HumanEval/32")
    result = verify(job_for(problem, "    return 0.0\ndef poly(xs, x):\n    return 0.0\n"), verifier_config)
    assert result.tests[0].outcome is Outcome.FAILED, result.tests


def test_the_agent_is_closed_to_the_candidate(run_functional):
    code = (
        "import os\n"
        "def probe(name):\n"
        "    try:\n"
        "        open(f'/proc/{os.getppid()}/{name}', 'rb').read(1)\n"
        "        return 'open'\n"
        "    except OSError as exc:\n"
        "        return exc.errno\n"
    )
    tests = ["assert probe('mem') == 13", "assert probe('fd/0') == 13", "assert probe('environ') == 13"]
    assert run_functional(code, tests).passed  # EACCES: the agent is not dumpable
