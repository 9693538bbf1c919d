"""Brackets in strings, comments and regex literals are no code: the brackets filter neither cuts at them nor
closes them (lsp_server/postprocess/code_brackets.py). The golden cases (golden/filters.toml) hold the named
examples; these tests add Hypothesis over literal text, the families' lexers, and the real server."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_helpers import inline, instant_options, lsp_session, open_document

from lsp_server.documents import Document
from lsp_server.postprocess import FilterContext, brackets
from lsp_server.postprocess.code_brackets import WINDOW, family, text_spans

# Text full of brackets and quotes, as a model might put in a string or a comment.
_TEXT = st.text(alphabet=st.sampled_from(list("()[]{}'\"`#/*\\ ab你😀\t")), max_size=40) | st.text(max_size=40)


def _contexts(prefix: str, suffix: str, language: str | None, language_id: str = "") -> list[FilterContext]:
    base = FilterContext(prefix, suffix, language, False, language_id=language_id)
    if language is None:
        return [base]
    syntax = Document("file:///t", language, prefix + suffix).syntax_near(len(prefix))
    return [base, FilterContext(prefix, suffix, language, False, syntax=syntax, language_id=language_id)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT)
def test_a_python_string_literal_is_never_cut_or_closed(text):
    completion = f"banner = {text!r}"
    for context in _contexts("def show():\n    ", "\n    return 1\n", "python"):
        assert brackets(completion, context) == completion


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT.map(lambda text: text.replace("\n", " ").replace("\r", " ")))
def test_a_comment_is_never_cut_or_closed(text):
    for language, marker in (("python", "#"), ("javascript", "//"), ("go", "//"), ("c", "//")):
        completion = f"x  {marker} {text}"
        for context in _contexts("", "\n", language):
            assert brackets(completion, context) == completion, language


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT)
def test_a_javascript_string_literal_is_never_cut_or_closed(text):
    completion = f"const s = {json.dumps(text)};"
    for context in _contexts("", "\n", "javascript"):
        assert brackets(completion, context) == completion


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT)
def test_a_closer_after_a_string_still_ends_the_completion(text):
    """The literal is skipped, not everything after it: the stray `)` that follows still cuts."""
    completion = f"{text!r}) + 1"
    for context in _contexts("x = ", "\n", "python"):
        assert brackets(completion, context) == repr(text)


def test_a_string_opened_far_before_the_cursor_still_holds_it():
    """The docstring starts more than WINDOW characters before the cursor: still text, as the parse says."""
    prefix = 'def f():\n    """Notes:\n' + "    plain words here\n" * (WINDOW // 10) + "    "
    for context in _contexts(prefix, '\n    """\n', "python"):
        assert brackets("a) the first", context) == "a) the first"


def test_text_before_a_bracket_that_is_not_ascii_keeps_the_cut_in_place():
    for context in _contexts("x = ", "\n", "python"):
        assert brackets('"你好😀" + len(s)) + 1', context) == '"你好😀" + len(s)'


def test_families_hide_their_comments_and_strings():
    def hidden(text: str, language_id: str) -> list[str]:
        return [text[start:end] for start, end in text_spans(text, family(language_id))]

    assert hidden("echo ${#arr[@]} # all (of them", "shellscript") == ["# all (of them"]
    assert hidden("#[Attr(1)] $x = 1; # note (", "php") == ["# note ("]
    assert hidden("f x' = (x') -- done (", "haskell") == ["-- done ("]  # a prime is no quote
    assert hidden("(quote '(a b)) ; see (", "lisp") == ["; see ("]
    assert hidden('val s = """a\n)b"""; /* (\n */', "kotlin") == ['"""a\n)b"""', "/* (\n */"]
    assert hidden("don't (stop", "markdown") == []
    assert hidden("open /* never closed (", "css") == ["/* never closed ("]
    assert hidden("'it''s' (x", "unknown-language") == ["'it'", "'s'"]


async def test_the_server_lexes_a_language_without_grammar_by_its_language_id(tmp_path):
    """Ruby has no grammar: the editor's language id picks the `#` family, so the comment's `(` is not closed."""
    uri = (tmp_path / "job.rb").as_uri()
    async with lsp_session(instant_options(tmp_path, text='puts "done" # (step 1')) as client:
        open_document(client, uri, "def run\n  \nend\n", language="ruby")
        assert await inline(client, uri, 1, 2) == ['puts "done" # (step 1']


# ---- hostile input: unterminated literals, huge and deeply nested text ----------------------------------------
# Model-written text is untrusted. Each case below is sized so that a scan quadratic in the text's length (a
# decode or a rescan per bracket) would not finish within the test timeout; the timing itself is not asserted.

_HUGE = 200_000


def test_an_unterminated_string_hides_the_rest_of_its_line_only():
    for language, language_id in (("python", "python"), (None, "ruby"), (None, "unknown-language")):
        for context in _contexts("x = ", "\n", language, language_id):
            assert brackets('"never closed (', context) == '"never closed ('  # no closer for text
            assert brackets("'a)b\ny = 1) + 2", context) == "'a)b\ny = 1"  # the next line is code again


def test_an_unterminated_string_stops_the_lexer_at_the_line_end():
    assert text_spans("s = 'open (\nf(x)", family("ruby")) == [(4, 11)]
    assert text_spans('s = """open (\nf(x)', family("python")) == [(4, 18)]  # runs to the end: no closer
    assert text_spans("a /* open (\nf(x)", family("c")) == [(2, 16)]


def test_a_huge_unterminated_string_full_of_brackets_and_wide_characters():
    completion = '"' + "(你😀]" * (_HUGE // 4)
    for language, language_id in (("python", "python"), ("javascript", "javascript"), (None, "ruby"), (None, "")):
        for context in _contexts("x = ", "\n", language, language_id):
            assert brackets(completion, context) == completion, language_id


def test_huge_code_with_a_stray_closer_at_the_end_is_cut_there():
    body = "f(你, [1, {2: '😀'}]) + " * (_HUGE // 24)
    for language, language_id in (("python", "python"), (None, "ruby")):
        for context in _contexts("x = ", "\n", language, language_id):
            assert brackets(body + "1) + 2", context) == body + "1", language_id


def test_deep_nesting_is_closed_without_recursion():
    depth = _HUGE // 2
    for language, language_id in (("python", "python"), (None, "")):
        for context in _contexts("x = ", "\n", language, language_id):
            assert brackets("[" * depth, context) == "[" * depth + "]" * depth


def test_a_huge_prefix_is_read_only_near_the_cursor():
    """A bracket opened megabytes before the cursor (past WINDOW) is not looked for: the closer cuts."""
    prefix = "x = (\n" + "# filler line\n" * _HUGE
    context = FilterContext(prefix, "\n", None, False, language_id="python")
    assert brackets("1) + 2", context) == "1"
