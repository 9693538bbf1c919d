"""Syntax diagnostics: tree-sitter in every language, CPython's compiler for Python (indentation errors and
'return' outside a function, which tree-sitter accepts), exact positions, and any text survives."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_helpers import instant_options, lsp_session, open_document
from lsprotocol import types as lsp

from lsp_server import syntax
from lsp_server.diagnostics import syntax_diagnostics
from lsp_server.documents import Document, utf16_len

NOT_INDENTED = "def absolute(x):\n    if x < 0:\n    return -x\n    return x\n"


def _diagnostics(text: str, language: str = "python") -> list[tuple[int, int, int, int, str]]:
    found = syntax_diagnostics(Document("file:///t.py", language, text))
    return [
        (d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character, d.message) for d in found
    ]


def test_an_indentation_error_tree_sitter_accepts_gets_cpythons_diagnostic():
    assert syntax.syntax_issues(syntax.parse(NOT_INDENTED, "python")) == []  # tree-sitter sees nothing wrong
    ((line, start, end_line, end, message),) = _diagnostics(NOT_INDENTED)
    assert (line, start, end_line, end) == (2, 4, 2, 13)  # `return -x`
    assert message.startswith("IndentationError: expected an indented block after 'if' statement on line 2")


def test_what_only_the_compiler_sees_is_reported():
    for text, expected in [
        ("return 1\n", "'return' outside function"),
        ("print 'hi'\n", "Missing parentheses in call to 'print'"),
        ("def f():\n\tif x:\n        pass\n", "TabError"),
        ("x = 1\n  y = 2\n", "unexpected indent"),
    ]:
        (diagnostic,) = _diagnostics(text)
        assert expected in diagnostic[4], text


def test_cpython_gives_the_exact_column_in_utf16_and_replaces_tree_sitters_issue():
    text = 's = "😀中" + (\n'
    ((line, start, _, end, message),) = _diagnostics(text)  # tree-sitter also flags the line: one diagnostic
    assert (line, start, end) == (0, 12, 13) and "'(' was never closed" in message
    assert text.encode("utf-16-le")[start * 2 : end * 2].decode("utf-16-le") == "("


def _marked(text: str, diagnostic) -> str:
    """The text a diagnostic's range covers, read the way an editor that ends lines at "\n" reads it."""
    line, start, _, end, _ = diagnostic
    row = text.split("\n")[line].encode("utf-16-le")
    return row[start * 2 : end * 2].decode("utf-16-le")


def test_a_lone_carriage_return_does_not_move_cpythons_error_to_another_line():
    """CPython ends a line at a lone "\r" as well; the documents (and tree-sitter) end lines at "\n" only."""
    for text, marked in [("x = 1\ry = (\rz = 2\n", "("), ("a = 1\rb = 2\nc = = 3\n", "="),
                         ("x = 1\r\nw = 2\ry = 1 +\n", "+")]:  # fmt: skip
        (diagnostic,) = _diagnostics(text)
        assert _marked(text, diagnostic) == marked, (text, diagnostic)
    assert syntax.python_error_point("x = 1\ry = (\rz = 2\n") == (0, 10)


def test_an_error_inside_an_fstring_expression_is_placed_in_the_line():
    """Python 3.11 gives such errors relative to the expression alone (written "(a +)")."""
    text = 'x = 1; y = f"{a +}"\n'
    (diagnostic,) = _diagnostics(text)
    assert "f-string" in diagnostic[4] and 13 <= diagnostic[1] <= 17  # inside the braces, not at `x = 1`
    text = 'x = 1\ny = f"""\n  {😀 b}"""\n'  # "invalid character", in the expression of a multi-line f-string
    (diagnostic,) = _diagnostics(text)
    assert diagnostic[0] == 2 and _marked(text, diagnostic) == "😀"


def test_errors_after_cpythons_first_come_from_tree_sitter():
    text = "x = 1\n  y = 2\nz = (\n"
    assert [d[0] for d in _diagnostics(text)] == [1, 2]


def test_other_languages_keep_tree_sitter_alone():
    assert _diagnostics("function f( {\n  return 1;\n}\n", "javascript")
    assert _diagnostics("function f() {\n  return 1;\n}\n", "javascript") == []


def test_a_file_too_big_for_the_compiler_is_judged_by_tree_sitter():
    text = "x = 1\n" * (syntax.PYTHON_COMPILE_LIMIT // 6 + 1) + "if x:\ny = 2\n"
    assert _diagnostics(text) == []  # the indentation error is CPython's to see, and it did not look


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("ifdefreturn():=+ \t\n\r\"'#[]{}\\x0😀\x00\ufeff")), max_size=80))
def test_any_python_text_gets_diagnostics_in_range_and_exactly_when_cpython_refuses_it(text):
    document = Document("file:///t.py", "python", text)
    found = syntax_diagnostics(document)
    for diagnostic in found:
        start, end = diagnostic.range.start, diagnostic.range.end
        assert (start.line, start.character) <= (end.line, end.character)
        assert end.line < document.line_count or (end.line == document.line_count and end.character == 0)
        assert end.character <= utf16_len(document.line(min(end.line, document.line_count - 1))) + 1
    compiles = syntax.python_compile_error(text, whole_program=True) is None
    assert bool(found) != compiles


async def test_the_server_publishes_the_indentation_error(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, NOT_INDENTED)
        published = await client.wait_for_notification(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        (diagnostic,) = published.diagnostics
        assert diagnostic.range.start.line == 2 and diagnostic.message.startswith("IndentationError")
        assert diagnostic.source == "mimo"
