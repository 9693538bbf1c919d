"""The review pipeline against a scripted OpenAI-compatible server, through the real RemoteEngine: checks plus
model findings, the one retry, chunking in parallel, over-long prompts, and the cache."""

from __future__ import annotations

import json

import pytest
from conftest import ScriptedServer

from engine.api import Overloaded
from engine.remote import RemoteEngine
from lsp_server.review.findings import FINDINGS_SCHEMA
from lsp_server.review.runner import ReviewConfig, review_diff
from lsp_server.review.sources import DiffSource, read_diff

BEFORE = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(40))


async def _review(repo, server: ScriptedServer, config: ReviewConfig | None = None):
    engine = RemoteEngine(server.url)
    try:
        await engine.check()
        return await review_diff(read_diff(DiffSource(), repo.root), engine, config)
    finally:
        await engine.aclose()


def _committed(repo, text: str = BEFORE) -> None:
    repo.write("calc.py", text)
    repo.commit()


async def test_model_findings_and_check_findings_come_together(repo, scripted_server):
    _committed(repo)
    repo.write("calc.py", BEFORE.replace("return x + 3\n", "return x - 3  # BUG: subtracts instead of adding\n")
               .replace("return x + 9\n", "return (x + 9\n"))  # fmt: skip
    report = await _review(repo, scripted_server)
    assert report.model == "fake-reviewer"
    by_rule = {f.rule_id: f for f in report.findings}
    assert by_rule["review/marked-bug"].message == "subtracts instead of adding"
    assert by_rule["review/marked-bug"].start_line == 14
    assert "mimo/syntax-error" in by_rule and by_rule["mimo/syntax-error"].source == "check"
    assert report.findings[0].severity == "error"  # most severe first


async def test_an_unreadable_answer_is_retried_once(repo):
    _committed(repo)
    repo.write("calc.py", BEFORE.replace("return x + 3\n", "return x  # BUG: lost the offset\n"))
    answers = iter(["I think it looks fine!", None])

    def answer(messages):
        scripted = next(answers)
        return (
            scripted
            if scripted is not None
            else json.dumps(
                {"findings": [{"path": "calc.py", "start_line": 14, "severity": "note", "rule": "x", "message": "m"}]}
            )
        )

    with ScriptedServer(answer) as server:
        report = await _review(repo, server)
    assert len(server.requests) == 2
    assert "could not be read" in server.requests[1][-1]["content"]  # the parse error is fed back
    assert [f.message for f in report.findings] == ["m"]


async def test_two_unreadable_answers_leave_a_note_not_a_crash(repo):
    _committed(repo)
    repo.write("calc.py", BEFORE.replace("return x + 3\n", "return x\n"))
    with ScriptedServer(lambda messages: "no json here") as server:
        report = await _review(repo, server)
    assert report.findings == () and len(server.requests) == 2
    assert any("not valid JSON" in note for note in report.notes)


async def test_a_diff_larger_than_the_budget_is_reviewed_in_several_chunks(repo, scripted_server):
    _committed(repo)
    changed = BEFORE
    for i in range(0, 40, 2):
        changed = changed.replace(f"return x + {i}\n", f"return x * {i}  # BUG: multiplies {i}\n")
    repo.write("calc.py", changed)
    report = await _review(repo, scripted_server, ReviewConfig(max_prompt_tokens=120, concurrency=3))
    assert report.chunks > 3 and len(scripted_server.requests) == report.chunks
    assert sorted(f.start_line for f in report.findings) == [2 + 4 * i for i in range(0, 40, 2)]


async def test_over_long_prompts_are_halved_until_they_fit(repo):
    _committed(repo)
    changed = BEFORE
    for i in range(6):
        changed = changed.replace(f"return x + {i * 5}\n", f"return x * {i}  # BUG: product {i}\n")
    repo.write("calc.py", changed)
    with ScriptedServer() as server:
        await _review(repo, server)
    (whole,) = server.requests  # one chunk, by our estimate
    whole_chars = sum(len(m["content"]) for m in whole)
    with ScriptedServer(max_prompt_chars=int(whole_chars * 0.8)) as server:  # the server disagrees
        report = await _review(repo, server)
    assert len(server.requests) >= 2
    assert sorted(f.message for f in report.findings) == [f"product {i}" for i in range(6)]


async def test_the_cache_re_reviews_only_what_changed(repo, tmp_path):
    _committed(repo)
    config = ReviewConfig(cache_dir=tmp_path / "cache")
    first = BEFORE.replace("return x + 3\n", "return x - 3  # BUG: minus\n")
    first = first.replace("return x + 30\n", "return x - 30  # BUG: minus thirty\n")
    repo.write("calc.py", first)
    with ScriptedServer() as server:
        report1 = await _review(repo, server, config)
    assert report1.units == 2 and report1.cached_units == 0 and len(server.requests) == report1.chunks

    with ScriptedServer() as server:
        again = await _review(repo, server, config)
    assert server.requests == [] and again.cached_units == 2
    assert again.findings == report1.findings

    # A new function at the top shifts both old hunks down: only the new hunk is asked about, and the cached
    # findings move with their code.
    repo.write("calc.py", "def g(y):\n    return y  # BUG: unused\n\n\n" + first)
    with ScriptedServer() as server:
        shifted = await _review(repo, server, config)
    assert len(server.requests) == 1 and "def g(y)" in server.requests[0][1]["content"]
    assert "minus" not in server.requests[0][1]["content"]
    assert sorted((f.start_line, f.message) for f in shifted.findings) == [
        (2, "unused"), (18, "minus"), (126, "minus thirty")]  # fmt: skip


async def test_a_different_model_does_not_reuse_the_cache(repo, tmp_path):
    _committed(repo)
    repo.write("calc.py", BEFORE.replace("return x + 3\n", "return x - 3  # BUG: minus\n"))
    config = ReviewConfig(cache_dir=tmp_path / "cache")
    with ScriptedServer() as server:
        await _review(repo, server, config)
    with ScriptedServer() as server:
        engine = RemoteEngine(server.url)
        engine._model = "another-model"  # what check() would set for a server serving another model
        try:
            await review_diff(read_diff(DiffSource(), repo.root), engine, config)
        finally:
            await engine.aclose()
    assert len(server.requests) == 1


async def test_without_an_engine_only_checks_run(repo):
    _committed(repo)
    repo.write("calc.py", BEFORE.replace("    return x + 3\n", "<<<<<<< HEAD\n"))
    report = await review_diff(read_diff(DiffSource(), repo.root), None)
    assert report.model is None and report.units == 0
    assert {f.rule_id for f in report.findings} == {"mimo/conflict-marker", "mimo/syntax-error"}


async def test_a_busy_server_is_waited_for(repo):
    _committed(repo)
    repo.write("calc.py", BEFORE.replace("return x + 3\n", "return x - 3  # BUG: minus\n"))
    with ScriptedServer(busy_replies=2) as server:
        report = await _review(repo, server)
    assert [f.message for f in report.findings] == ["minus"]


async def test_an_engine_error_stops_the_review(repo):
    _committed(repo)
    repo.write("calc.py", BEFORE.replace("return x + 3\n", "return x - 3\n"))
    with ScriptedServer(busy_replies=100) as server, pytest.raises(Overloaded):
        await _review(repo, server)


def _values(tree):
    yield tree
    children = tree.values() if isinstance(tree, dict) else tree if isinstance(tree, list) else ()
    for child in children:
        yield from _values(child)


async def test_the_answer_schema_reaches_the_server_for_structured_decoding(repo, scripted_server):
    _committed(repo)
    repo.write("calc.py", BEFORE.replace("return x + 3\n", "return x - 3\n"))
    await _review(repo, scripted_server)
    assert any(value == FINDINGS_SCHEMA for value in _values(scripted_server.bodies[0]))
