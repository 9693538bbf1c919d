"""An adversarial corpus: wrong solutions that try to get a passing verdict anyway, one distinct trick each.

Every attempt answers a problem wrongly (or not at all) and then tries to turn that into passed tests. None may
pass a single test: the verdict comes from a judge the candidate cannot reach, or from a comparison outside the
sandbox. ``test_verify_forging.py`` holds the techniques of issue 14 that defeated the old harness; the attempts
here go after the new design (its channel, its agent, its copy-back, its builtins) as well.
"""

from __future__ import annotations

import pytest

from training.verify import Outcome

ADD_TESTS = ["assert add(1, 2) == 3", "assert add(5, 5) == 10", "assert add(-1, 4) == 3"]
CHECK_SETUP = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-7, 7) == 0\n"
WRONG = "def add(a, b):\n    return a - b\n"

FUNCTIONAL_ATTEMPTS = {
    "eq-always-true": "class T:\n    __eq__ = lambda s, o: True\n    __hash__ = None\ndef add(a, b):\n    return T()\n",
    "float-subclass": "class F(float):\n    __eq__ = lambda s, o: True\ndef add(a, b):\n    return F(0)\n",
    "str-subclass": "class S(str):\n    __eq__ = lambda s, o: True\ndef add(a, b):\n    return S('x')\n",
    "list-subclass-in-a-list": "class L(list):\n    __eq__ = lambda s, o: True\ndef add(a, b):\n    return [L()]\n",
    "generator": "def add(a, b):\n    yield a + b\n",
    "exit-at-import": WRONG + "import sys\nsys.exit(0)\n",
    "os-exit-in-call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "system-exit-in-call": "def add(a, b):\n    raise SystemExit(0)\n",
    "atexit-prints-passed": WRONG + "import atexit\natexit.register(lambda: print('3 tests passed'))\n",
    "junk-on-every-fd": WRONG
    + "import os\nfor fd in range(40):\n    try:\n        os.write(fd, b'\\x00\\x00\\x00\\x10[\"ok\",1,3,{},{}]')\n"
    "    except OSError:\n        pass\n",
    "replies-sent-ahead": WRONG + "import gc, socket, _socket, marshal\n"
    "for obj in gc.get_objects():\n"
    "    if isinstance(obj, _socket.socket):\n"
    "        for seq in range(1, 50):\n"
    "            body = ('[\"ok\",%d,3,{},{}]' % seq).encode()\n"
    "            try:\n                obj.send(len(body).to_bytes(4, 'big') + body)\n"
    "            except OSError:\n                pass\n",
    "patched-wire-encoder": WRONG + "import sys\nwire = sys.modules.get('wire')\nif wire:\n"
    '    wire.encode = lambda value: b\'["raised",1,"TestTimeout","skip",false]\'\n',
    "kill-agent-and-init": "import os, signal\nfor pid in (os.getppid(), 1):\n    try:\n"
    "        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\n" + WRONG,
    "stop-the-agent": WRONG + "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGSTOP)\nexcept OSError:\n"
    "    pass\n",
    "read-every-process-memory": WRONG
    + "import os\nfor pid in os.listdir('/proc'):\n    if pid.isdigit():\n        try:\n"
    "            open(f'/proc/{pid}/mem', 'rb').read(1)\n        except OSError:\n            pass\n",
    "patch-builtins-here": WRONG + "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})\n"
    "builtins.abs = lambda x: 0\n",
    "deep-nesting": "def add(a, b):\n    v = []\n    for _ in range(100000):\n        v = [v]\n    return v\n",
    "huge-reply": "def add(a, b):\n    return 'x' * (80 << 20)\n",
    "shadow-the-check-function": WRONG + "def check(candidate):\n    pass\n",
    "shadow-a-tests-helper": "def twice(x):\n    return add(x, 0)\ndef add(a, b):\n    return 0\n",
    "thread-floods-the-channel": WRONG
    + "import threading, gc, _socket\ndef flood():\n    for obj in gc.get_objects():\n"
    "        if isinstance(obj, _socket.socket):\n            while True:\n                try:\n"
    "                    obj.send(b'\\x00\\x00\\x00\\x02[]')\n                except OSError:\n                    return\n"
    "threading.Thread(target=flood, daemon=True).start()\n",
    "ptrace-attach-parent": WRONG
    + "import ctypes, os\nlibc = ctypes.CDLL(None)\nlibc.ptrace(16, os.getppid(), 0, 0)\n",  # PTRACE_ATTACH
    "swallow-the-timeout": "def add(a, b):\n    while True:\n        try:\n            while True:\n"
    "                pass\n        except BaseException:\n            continue\n",
    "mutate-the-input-it-is-compared-with": "def add(a, b):\n    return 0\n",
    "judge-main-module-as-a-name": WRONG + "import sys\ncheck = sys.modules['__main__']\n",
    "optimize-flag-via-sys-flags": WRONG + "import sys\ntry:\n    sys.flags.optimize = 2\nexcept Exception:\n"
    "    pass\n",
}


@pytest.mark.parametrize("attempt", sorted(FUNCTIONAL_ATTEMPTS))
def test_no_functional_attempt_passes_a_test(run_functional, verifier_config, attempt):
    code = FUNCTIONAL_ATTEMPTS[attempt]
    if attempt == "shadow-a-tests-helper":
        result = run_functional(code, ["assert twice(2) == 4"], setup="def twice(x):\n    return 2 * add(x, 0)\n")
    elif attempt == "mutate-the-input-it-is-compared-with":
        code = "def clear_sorted(xs):\n    xs.clear()\n    return []\n"
        result = run_functional(code, ["xs = [3, 1, 2]\nassert clear_sorted(xs) == sorted(xs)"])
    elif attempt == "shadow-the-check-function":
        result = run_functional(code, ["check(add)"], setup=CHECK_SETUP)
    else:
        result = run_functional(code, ADD_TESTS + ["check(add)"], setup=CHECK_SETUP)
    passed = [t for t in result.tests if t.outcome is Outcome.PASSED]
    assert passed == [] and not result.passed, result.tests


STDIO_ATTEMPTS = {
    "underscored-number": "input()\nprint('1_0')\n",
    "wrong-low-digits": "input()\nprint(10**20 + 7)\n",
    "float-for-an-integer": "n = int(input())\nprint(float(2 * n) + 1e-9)\n",
    "nan-and-inf": "input()\nprint('nan')\n",
    "answer-then-crash": "n = int(input())\nprint(2 * n + 1)\nraise SystemExit(1)\n",
    "daemon-writes-later": "import os, time\nn = int(input())\nif os.fork() == 0:\n    os.setsid()\n"
    "    time.sleep(0.2)\n    print(2 * n, flush=True)\n    os._exit(0)\n",
    "write-to-every-fd": "import os\ninput()\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'10\\n')\n"
    "    except OSError:\n        pass\nprint(0)\n",
    "kill-the-agent": "import os, signal\ninput()\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n"
    "    pass\nprint(0)\n",
    "unicode-digits": "input()\nprint('١٠')\n",
}


@pytest.mark.parametrize("attempt", sorted(STDIO_ATTEMPTS))
def test_no_stdio_attempt_passes_a_test(run_stdio, attempt):
    result = run_stdio(STDIO_ATTEMPTS[attempt], [("5", "10"), ("6", "12")])
    passed = [t for t in result.tests if t.outcome is Outcome.PASSED]
    assert passed == [] and not result.passed, result.tests


def test_the_corpus_is_large_enough():
    assert len(FUNCTIONAL_ATTEMPTS) + len(STDIO_ATTEMPTS) >= 20
