"""compute_fix with scripted engines (the Engine protocol is our boundary): what a fix may change, whatever the
model answers. The real nano through the real server is in test_fixits_nano.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from scripted_engines import ChatEngine, InfillEngine

from lsp_server.diagnostics import syntax_diagnostics
from lsp_server.documents import Document
from lsp_server.fix_check import keeps_code
from lsp_server.fixits import MAX_TARGET_LINES, compute_fix, request_for

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

BROKEN_FILES = tomllib.loads((Path(__file__).parent / "fixes" / "broken.toml").read_text(encoding="utf-8"))["case"]
BROKEN = "def f(x):\n    return x +\n\nprint(f(1))\n"
TOTAL = "def total(xs)\n    result = 0\n    for x in xs:\n        result += x\n    return result\n\nprint(total([1]))\n"
MEAN = "def mean(xs):\n    if not xs:\n        return 0.0\n    return sum(xs / len(xs)\n\nprint(mean([1.0]))\n"


def _request(document: Document):
    diagnostic, *_ = syntax_diagnostics(document)
    return request_for(document.uri, diagnostic)


def _apply(document: Document, outcome) -> str:
    edit = outcome.edit
    return document.text[: edit.start] + edit.new_text + document.text[edit.end :]


async def test_chat_model_fix_comes_from_the_fenced_block():
    document = Document("file:///f.py", "python", BROKEN)
    engine = ChatEngine("Here you go:\n```python\n    return x + 1\n```\n")
    outcome = await compute_fix(engine, document, _request(document))
    assert outcome.edit is not None and outcome.edit.new_text == " 1"
    (request,) = engine.requests
    assert request.messages is not None and "return x +" in request.messages[-1].content


async def test_chat_reply_without_code_or_still_broken_is_not_offered():
    document = Document("file:///f.py", "python", BROKEN)
    for reply in ("I cannot help with that.", "```\n    return (x +\n```"):
        outcome = await compute_fix(ChatEngine(reply), document, _request(document))
        assert outcome.edit is None and outcome.reason


async def test_a_reasoning_models_thinking_never_becomes_the_edit():
    """MiMo-7B-RL thinks first; a fenced block inside the thinking is scratch work, not the answer."""
    document = Document("file:///f.py", "python", BROKEN)
    thinking = "<think>Maybe:\n```python\n    return x + 2  # guess\n```\nNo, add one.</think>"
    outcome = await compute_fix(
        ChatEngine(thinking + "\n```python\n    return x + 1\n```"), document, _request(document)
    )
    assert outcome.edit is not None and outcome.edit.new_text == " 1"
    unfinished = await compute_fix(ChatEngine("<think>```python\n    return x + 2\n```"), document, _request(document))
    assert unfinished.edit is None
    opened_in_prompt = (
        "the template opened it\n```python\n    return x + 2\n```</think>```python\n    return x + 1\n```"
    )
    outcome = await compute_fix(ChatEngine(opened_in_prompt), document, _request(document))
    assert outcome.edit is not None and outcome.edit.new_text == " 1"


def test_a_range_ending_at_column_zero_does_not_take_the_next_line():
    diagnostic = lsp.Diagnostic(range=lsp.Range(lsp.Position(2, 0), lsp.Position(4, 0)), message="m")
    request = request_for("file:///f.py", diagnostic)
    assert (request.first_line, request.last_line) == (2, 3)


def test_a_long_diagnostic_range_means_its_first_line():
    """tree-sitter's ERROR for `def total(xs)` spans the whole function; the problem is on its first line."""
    diagnostic = lsp.Diagnostic(
        range=lsp.Range(lsp.Position(0, 0), lsp.Position(MAX_TARGET_LINES + 1, 17)), message="m"
    )
    assert (request_for("file:///f.py", diagnostic).last_line) == 0


async def test_a_fix_that_loses_the_indentation_is_not_offered():
    """tree-sitter parses `return x + 1` at column 0 inside a def; CPython (and the check) does not."""
    document = Document(uri="file:///t.py", language="python", text=BROKEN)
    outcome = await compute_fix(ChatEngine("```python\nreturn x + 1\n```"), document, _request(document))
    assert outcome.edit is None and "IndentationError" in outcome.reason
    indented = await compute_fix(ChatEngine("```python\n    return x + 1\n```"), document, _request(document))
    assert indented.edit is not None


@pytest.mark.parametrize(
    "answer",
    [
        "#\n# Apple tests for the `__init__` module\n#\n#\n# Apple tests for the `__init__` module\n#",  # seen from nano
        "#if defined(__GNUC__)\n#define UNUSED __attribute__((unused))\n#endif\n",  # seen from nano
        "",  # delete the statement
        "pass",
        "def total(xs): pass  # fixed",
    ],
)
async def test_answers_that_destroy_code_are_never_offered(answer):
    for text in (TOTAL, MEAN):
        document = Document("file:///t.py", "python", text)
        outcome = await compute_fix(InfillEngine(answer), document, _request(document))
        assert outcome.edit is None, _apply(document, outcome)


async def test_the_missing_colon_is_inserted_and_nothing_else_changes():
    document = Document("file:///t.py", "python", TOTAL)
    engine = InfillEngine(" -> tuple[int, int]:\n    x = 1\n", ":\n    result = 0\n")  # greedy, then a sample
    outcome = await compute_fix(engine, document, _request(document))
    assert _apply(document, outcome) == TOTAL.replace("def total(xs)", "def total(xs):")
    assert outcome.edit.new_text == ":"
    (greedy, sampled) = engine.requests
    assert greedy.fim.prefix.endswith("def total(xs)")  # the model completes the line from CPython's point
    assert greedy.sampling.temperature == 0 and sampled.sampling.n > 1


async def test_an_unmatched_bracket_may_be_deleted_but_no_word():
    text = "def report(xs):\n    print(len(xs)))\n    return xs\n"
    document = Document("file:///t.py", "python", text)
    assert _apply(document, await compute_fix(InfillEngine(""), document, _request(document))) == text.replace(
        ")))", "))"
    )
    wrong = await compute_fix(InfillEngine("print(xs)"), document, _request(document))
    assert wrong.edit is None and "deletes code" in wrong.reason


async def test_a_syntax_error_is_not_fixed_by_renaming_but_an_undefined_name_is():
    text = "class Point\n    x = 1\n"
    document = Document("file:///t.py", "python", text)
    assert (await compute_fix(InfillEngine("er:"), document, _request(document))).edit is None  # Point -> Pointer
    undefined = "def area(r):\n    return 3.14 * rr * r\n"
    document = Document("file:///t.py", "python", undefined)
    diagnostic = lsp.Diagnostic(
        range=lsp.Range(lsp.Position(1, 18), lsp.Position(1, 20)), message="undefined", source="pyright"
    )
    outcome = await compute_fix(InfillEngine("r * r"), document, request_for(document.uri, diagnostic))
    assert _apply(document, outcome) == undefined.replace("rr", "r")


async def test_an_indentation_error_is_fixed_with_whitespace_alone():
    text = "def absolute(x):\n    if x < 0:\n    return -x\n    return x\n"
    document = Document("file:///t.py", "python", text)
    request = _request(document)
    assert request.diagnostic.message.startswith("IndentationError")
    changed = await compute_fix(InfillEngine("        return x"), document, request)  # `-` dropped
    assert changed.edit is None and "whitespace" in changed.reason
    outcome = await compute_fix(InfillEngine("        return -x"), document, request)
    assert _apply(document, outcome) == text.replace("    return -x", "        return -x")


@pytest.mark.parametrize(
    ("old", "new", "kept"),
    [
        ("def total(xs)", "def total(xs):", True),
        ("def total(xs)", "def total(xs) -> float:", False),  # not minimal: four tokens for one
        ("return sum(xs / len(xs)", "return sum(xs) / len(xs)", True),
        ("return sum(xs / len(xs)", "return sum(xs)", False),
        ("retrun x * 2", "return x * 2", True),  # a misspelt keyword
        ('message = "Hi, " + name + "!', 'message = "Hi, " + name + "!"', True),  # one quote closes it
        ("x = 1  # note", "x = 1)", False),  # a comment lost
        ("x = f(1", "x = f(1)  # fixed", False),  # a comment added
        ("def total(xs)\n    result = 0", "#if defined(__GNUC__)\n#define x", False),
        ("foo(a b)", "foo(a, b)\nbar()\nbaz()", False),  # lines added
        ("print(x", 'print("x")', False),  # code turned into a string parses as well as comments do
        ("return sum(xs / len(xs)", 'return "sum(xs / len(xs)"', False),
        ('print("hello world', 'print("hello world")', True),  # a string left open, closed
        ("x = 'abc def", "x = 'abc def'", True),
        ('x = f"total {n} items', 'x = f"total {n} items"', True),  # an f-string's expression stays code
        # A fix is the line with a small insertion, never the line with its own text repeated; all of these parse.
        ("values = [1, 2", "values = [1, 2]", True),
        ("values = [1, 2", "values = values = [1, 2]", False),  # the statement written again from its middle
        ("values = [1, 2", "values = [1, 2, 2]", False),  # a phrase of the line again
        ("values = [1, 2", "values = [1, 2, values]", False),  # a name of the line again
        ("print(len(xs)))", "print(len(len(xs)))", False),  # a call repeated instead of a bracket deleted
        ("def total(xs)", "def total(xs): total", False),  # a one-line body made of the line's own name
        ("print(len(xs)))", "print(len(xs), xs)", False),  # a name of the line again
        ("for x xs:", "for x in xs:", True),  # a keyword is no name
        ("return x +", "return x + 1", True),  # nor is a literal
        ("return a +", "return a + b", True),  # a missing operand may be a name the line did not have
        ('print "hello"', 'print("hello")', True),  # a keyword read again as a name is the same word
    ],
)
def test_keeps_code(old, new, kept):
    assert (keeps_code(old, new, "python") is None) == kept


@pytest.mark.parametrize(
    ("old", "new", "language"),
    [
        ("values = [1, 2", "values = values = [1, 2]", "python"),
        ("let values = [1, 2", "let values = values = [1, 2]", "javascript"),
        ("fmt.Println(x, y", "fmt.Println(x, y, y)", "go"),
    ],
)
def test_a_fix_that_repeats_the_lines_own_code_is_refused_whatever_the_diagnostic(old, new, language):
    """Another tool's diagnostic may rename (an undefined name), yet not repeat a phrase of the line."""
    assert "repeats code" in (keeps_code(old, new, language) or "")
    assert "repeats code" in (keeps_code(old, new, language, renames=True) or "")


def test_every_right_fix_of_the_broken_files_keeps_the_code():
    """The right fixes of fixes/broken.toml (the nano table's cases) pass the checks that refuse the wrong ones."""
    for case in BROKEN_FILES:
        document = Document("file:///t", case["language"], case["text"])
        row = syntax_diagnostics(document)[0].range.start.line
        line = case["text"].split("\n")[row]
        indentation = line[: len(line) - len(line.lstrip())]
        for right in case["right"]:
            whitespace_only = right == line.strip()  # an indentation error
            assert keeps_code(line, indentation + right, case["language"], whitespace_only) is None, case["name"]


async def test_a_whole_statement_infilled_from_the_error_point_is_not_offered_there():
    """The instant engine answers the whole fixed statement; infilled from CPython's point (the `[`) it made
    `values = values = [1, 2]`, which parses and was offered. From the statement's start it is the right fix."""
    text = "values = [1, 2\nprint(values)\n"
    document = Document("file:///t.py", "python", text)
    outcome = await compute_fix(InfillEngine("values = [1, 2]"), document, _request(document))
    assert _apply(document, outcome) == "values = [1, 2]\nprint(values)\n"
    assert outcome.edit.new_text == "]"
    repeated = await compute_fix(InfillEngine("values = values = [1, 2]"), document, _request(document))
    assert repeated.edit is None and "repeats code" in repeated.reason


async def test_a_fix_that_moves_the_error_down_a_line_is_not_offered():
    """Found by test_fix_properties: `(` in front and one more space of indentation balance the brackets and
    parse, but the next line no longer matches the indentation; CPython stops at the first error, so the error
    only moved down a line."""
    text = "def report(xs):\n    print(len(xs)))  # how many\n    return xs\n"
    document = Document("file:///t.py", "python", text)
    outcome = await compute_fix(InfillEngine(" (   print(len(xs)))  # how many"), document, _request(document))
    assert outcome.edit is None and "breaks a line after it" in outcome.reason


async def test_an_error_the_file_already_had_further_down_does_not_stop_a_fix():
    """CPython stops at its first error: fixing it reveals the next one, which was there before."""
    text = TOTAL + "y = = 2\n"
    document = Document("file:///t.py", "python", text)
    outcome = await compute_fix(InfillEngine(":"), document, _request(document))
    assert _apply(document, outcome) == text.replace("def total(xs)", "def total(xs):")


async def test_a_fix_that_turns_code_into_a_string_is_not_offered():
    document = Document("file:///t.py", "python", MEAN)
    outcome = await compute_fix(InfillEngine('"sum(xs / len(xs)"'), document, _request(document))
    assert outcome.edit is None and "into a string" in outcome.reason


async def test_a_syntax_diagnostic_made_stale_by_an_edit_gets_no_fix():
    """The editor lists fixes for the diagnostics it holds; the line may have been fixed by hand since, and a
    harmless-looking answer (a `;` more) would then be offered as a fix of nothing."""
    document = Document("file:///t.py", "python", MEAN)
    request = _request(document)
    document.apply_change(MEAN.replace("sum(xs / len(xs)", "sum(xs) / len(xs)"))
    engine = InfillEngine("return sum(xs) / len(xs);")
    outcome = await compute_fix(engine, document, request)
    assert outcome.edit is None and "no longer there" in outcome.reason and engine.requests == []
