"""Plain functions: function bodies as whole lines, the candidate screen, the loss filter's rule."""

from __future__ import annotations

import pytest

from training.repo.loss_filter import judge, loss_bounds
from training.repo.mining.functions import function_bodies
from training.repo.mining.screen import screen

SOURCE = '''import functools


def plain(x):
    """Docstring."""
    y = x + 1
    return y


def one_liner(x): return x


def no_body():
    """Only a docstring."""


class Shape:
    def area(self):
        width = self.w
        return width * self.h

    @functools.cache
    def decorated(self, n):
        @functools.wraps(plain)
        def inner(v):
            return v

        return inner(n)

    def short(self):
        return 1


async def fetch(url,
                timeout=3):
    data = await url.read(timeout)
    return data
'''


def test_function_bodies_are_whole_lines_after_the_docstring():
    bodies = {body.qualname: body for body in function_bodies(SOURCE)}
    assert sorted(bodies) == ["Shape.area", "Shape.decorated", "fetch", "plain"]  # one-liners and 1-line bodies out
    plain = bodies["plain"]
    assert plain.body(SOURCE) == "    y = x + 1\n    return y\n"
    assert plain.with_body(SOURCE, plain.body(SOURCE)) == SOURCE
    emptied = plain.emptied(SOURCE)
    assert '    """Docstring."""\n    pass\n\n\ndef one_liner' in emptied
    decorated = bodies["Shape.decorated"]
    assert decorated.body(SOURCE).startswith("        @functools.wraps(plain)\n")  # the nested decorator is in it
    assert decorated.indent == "        "
    assert bodies["fetch"].body(SOURCE) == "    data = await url.read(timeout)\n    return data\n"
    assert function_bodies("def broken(:\n") == []


@pytest.mark.parametrize(
    "body",
    [
        "    import os\n    os._exit(0)\n",
        "    raise SystemExit(0) if exit() else None\n",
        "    __import__('os')._exit(0)\n",
        "    getattr(x, '_exit')(0)\n",
        "    sys.modules['pytest'].main = None\n",
        "    for obj in gc.get_objects():\n        pass\n",
        "    frame = inspect.currentframe().f_back\n",
        "    open('/tmp/results.json', 'w').write('{}')\n",
        "    return eval('1')\n",
        "    return (lambda: 0).__globals__\n",
        "not indented at all(\n",
    ],
)
def test_the_screen_refuses_what_could_reach_the_test_runner(body):
    assert screen(body) is not None


def test_the_screen_lets_ordinary_code_through():
    body = "    total = 0\n    for value in values:\n        total += abs(value)\n\n    return sorted([total])\n"
    assert screen(body) is None


def test_loss_bounds_reject_the_extremes_and_scale_with_the_repository():
    losses = [1.9, 2.0, 2.1, 2.2, 2.0, 1.8, 2.3]
    bounds = loss_bounds(losses)
    assert judge(2.5, bounds).keep
    high = judge(6.5, bounds)
    assert not high.keep and high.reason == "loss-high" and "6.50" in high.detail
    low = judge(0.1, bounds)
    assert not low.keep and low.reason == "loss-low"
    assert loss_bounds([2.0, 9.0]) is None and judge(9.0, None).keep  # too few files to judge
    wider = loss_bounds([1.0, 2.0, 3.0, 4.0, 5.0, 3.0, 2.5])
    assert judge(6.5, wider).keep  # a spread-out repository gets a wider range
