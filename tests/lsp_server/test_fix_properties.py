"""Whatever a model answers, an offered fix keeps the code: Hypothesis writes the answers (random code, mutations
of the broken line, the destructive answers nano gave), and every fix offered is checked with Python's own
tools, independently of the checks that chose it: only the diagnostic's line changed, the file compiles, it has
as many statements as the right fix, the same comments, and the names of the right fix (none turned into a
string, none of the file's repeated)."""

from __future__ import annotations

import ast
import asyncio
import io
import re
import tokenize
from collections import Counter

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from scripted_engines import ChatEngine, InfillEngine

from lsp_server import syntax
from lsp_server.diagnostics import syntax_diagnostics
from lsp_server.documents import Document
from lsp_server.fixits import compute_fix, request_for

# (broken file, the file fixed right): one syntax error each, so a fix that checks out must compile.
CASES = [
    (
        "def total(xs)\n    result = 0  # running sum\n    for x in xs:\n        result += x\n    return result\n\n"
        "print(total([1, 2]))\n",
        "def total(xs):\n    result = 0  # running sum\n    for x in xs:\n        result += x\n    return result\n\n"
        "print(total([1, 2]))\n",
    ),
    (
        "def mean(xs):\n    if not xs:\n        return 0.0  # empty\n    return sum(xs / len(xs)\n\n\nprint(mean([1.0]))\n",
        "def mean(xs):\n    if not xs:\n        return 0.0  # empty\n    return sum(xs) / len(xs)\n\n\nprint(mean([1.0]))\n",
    ),
    (
        "def report(xs):\n    print(len(xs)))  # how many\n    return xs\n",
        "def report(xs):\n    print(len(xs))  # how many\n    return xs\n",
    ),
    ("values = [1, 2\nprint(values)\n", "values = [1, 2]\nprint(values)\n"),
]

_CODE = st.text(alphabet=st.sampled_from(list("abcdefxsumlen()[]:=+-*/#., \n\t\"'0123456789")), max_size=60)
_DESTRUCTIVE = st.sampled_from(
    [
        "#\n# Apple tests for the `__init__` module\n#",
        "#if defined(__GNUC__)\n#define UNUSED __attribute__((unused))\n#endif",
        "",
        "pass",
        "# fixed",
        "return 0",
        '"return sum(xs / len(xs)"',
        '"print(len(xs)))"',
    ]
)


@st.composite
def _mutation(draw, line: str) -> str:
    """The broken line with a few characters inserted, deleted or replaced."""
    chars = list(line)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(chars)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from(list(":()[],=#'\" abx1\n")))
        if action == "insert" or not chars:
            chars.insert(at, char)
        elif action == "delete" and at < len(chars):
            del chars[at]
        elif at < len(chars):
            chars[at] = char
    return "".join(chars)


@st.composite
def _repeated(draw, line: str) -> str:
    """The line with a piece of its own text inserted again (`values = values = [1, 2]`): what an infill writes
    when it answers the whole statement from the middle of the line."""
    start = draw(st.integers(0, len(line)))
    piece = line[start : draw(st.integers(start, len(line)))]
    at = draw(st.integers(0, len(line)))
    return line[:at] + piece + line[at:]


@st.composite
def _answers(draw) -> tuple[int, list[str]]:
    case = draw(st.integers(0, len(CASES) - 1))
    broken = CASES[case][0]
    row = syntax_diagnostics(Document("file:///t.py", "python", broken))[0].range.start.line
    line, right = broken.split("\n")[row], CASES[case][1].split("\n")[row]
    point = syntax.python_error_point(broken)[1]
    near_right = [right.strip(), right[point:], right[point - 1 :]]  # what each span needs to be right
    one = st.one_of(
        _CODE, _DESTRUCTIVE, _mutation(line), _mutation(line.strip()), st.sampled_from(near_right),
        st.sampled_from(near_right).flatmap(_mutation), _repeated(right.strip()), _repeated(right[point:]),
    )  # fmt: skip
    return case, draw(st.lists(one, min_size=1, max_size=6))


def _statements(text: str) -> int:
    return sum(isinstance(node, ast.stmt) for node in ast.walk(ast.parse(text)))


def _comments(text: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return [token.string for token in tokens if token.type == tokenize.COMMENT]


def _names(text: str) -> Counter[str]:
    """Names and keywords as Python's tokenizer reads them: a word inside a string or a comment is none."""
    return Counter(t.string for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.NAME)


def _check_offered(broken: str, right: str, row: int, fixed: str) -> None:
    before, after = broken.split("\n"), fixed.split("\n")
    assert after[:row] == before[:row], "a line before the diagnostic changed"
    tail = len(before) - row - 1
    assert after[len(after) - tail :] == before[row + 1 :], "a line after the diagnostic changed"
    compile(fixed, "<fixed>", "exec")  # the error is gone and no other appeared
    assert _statements(fixed) == _statements(right), "statements were deleted or added"
    assert _comments(fixed) == _comments(right), "comments were added, lost or changed"
    assert not _names(right) - _names(fixed), "code was turned into text (a string)"
    words = set(re.findall(r"[^\W\d]\w*", broken))  # the broken file may not tokenize (a bracket left open)
    repeated = [name for name in _names(fixed) - _names(right) if name in words]
    assert not repeated, f"names of the file were repeated: {repeated}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=_answers(), chat=st.booleans())
def test_an_offered_fix_keeps_the_code_whatever_the_model_answers(drawn, chat):
    case, answers = drawn
    broken, right = CASES[case]
    document = Document("file:///t.py", "python", broken)
    diagnostic = syntax_diagnostics(document)[0]
    if chat:
        indent = broken.split("\n")[diagnostic.range.start.line]
        indent = indent[: len(indent) - len(indent.lstrip())]
        engine = ChatEngine(f"```python\n{indent}{answers[0]}\n```")
    else:
        engine = InfillEngine(*answers)
    outcome = asyncio.run(compute_fix(engine, document, request_for(document.uri, diagnostic)))
    event("offered" if outcome.edit is not None else "not offered")
    if outcome.edit is None:
        assert outcome.reason
        return
    fixed = broken[: outcome.edit.start] + outcome.edit.new_text + broken[outcome.edit.end :]
    _check_offered(broken, right, diagnostic.range.start.line, fixed)
