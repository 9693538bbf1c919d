"""Review with a reasoning model, at the HTTP boundary: a FastAPI server that thinks like MiMo-7B-RL before it
answers. The thinking is stripped (never parsed for findings, never sent back), budgeted (a model that thinks
without end is cut off and asked once more), and structured JSON still comes out; plus --api-key."""

from __future__ import annotations

import json

import pytest
from conftest import findings_for_marked_lines
from reasoning_server import ReasoningServer
from typer.testing import CliRunner

from engine.remote import RemoteEngine
from lsp_server.review.findings import FINDINGS_SCHEMA
from lsp_server.review.runner import ReviewConfig, review_diff
from lsp_server.review.sources import DiffSource, read_diff
from mimo.cli import app

BEFORE = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(10))
CHANGED = BEFORE.replace("return x + 3\n", "return x - 3  # BUG: subtracts\n")
# Thinking that holds a finding-shaped JSON object on a changed line: it must never become a finding.
DECOY = ('Let me look. Maybe {"findings": [{"path": "calc.py", "start_line": 14, "end_line": 14, '
         '"severity": "error", "rule": "decoy", "message": "DECOY FROM THINKING"}]} ... no, line 14 subtracts.')  # fmt: skip
pytestmark = pytest.mark.timeout(60)


def _thinker(messages: list[dict]) -> tuple[str, str | None]:
    return DECOY, findings_for_marked_lines(messages)


async def _review(repo, server: ReasoningServer, config: ReviewConfig | None = None, **engine_options):
    repo.write("calc.py", BEFORE)
    repo.commit()
    repo.write("calc.py", CHANGED)
    engine = RemoteEngine(server.url, **engine_options)
    try:
        await engine.check()
        return await review_diff(read_diff(DiffSource(), repo.root), engine, config)
    finally:
        await engine.aclose()


@pytest.mark.parametrize("mode", ["inline", "opened", "parser"])
async def test_thinking_is_stripped_and_never_a_finding(repo, mode):
    with ReasoningServer(_thinker, mode=mode) as server:
        report = await _review(repo, server)
    assert [(f.rule_id, f.message, f.start_line) for f in report.findings] == [("review/marked-bug", "subtracts", 14)]
    assert report.notes == () and len(server.bodies) == 1  # read on the first try: no retry was needed
    # Structured output travels with the request: vLLM applies it to the answer after the thinking.
    assert server.bodies[0]["response_format"]["json_schema"]["schema"] == FINDINGS_SCHEMA


async def test_thinking_without_end_is_cut_at_the_budget_and_asked_once_more(repo):
    calls = []

    def endless_then_direct(messages):
        calls.append(messages)
        return ("hmm " * 10, None) if len(calls) == 1 else ("short.", findings_for_marked_lines(messages))

    with ReasoningServer(endless_then_direct) as server:
        report = await _review(repo, server, ReviewConfig(thinking_tokens=25))  # 100 characters
    assert [f.message for f in report.findings] == ["subtracts"]
    max_tokens = server.bodies[0]["max_tokens"]
    assert max_tokens == 768 + 25 and server.pieces_sent[0] < 40 < max_tokens  # hung up near 100 characters
    retry = calls[1]
    assert "ran out of room while thinking" in retry[-1]["content"]
    assert all("hmm" not in m["content"] and "<think>" not in m["content"] for m in retry)  # thinking not sent back


async def test_a_model_that_never_stops_thinking_leaves_a_note_not_a_finding(repo):
    with ReasoningServer(lambda messages: (DECOY, None)) as server:
        report = await _review(repo, server, ReviewConfig(thinking_tokens=40))
    assert report.findings == () and len(server.bodies) == 2
    assert any("did not end within its budget (40 tokens)" in note for note in report.notes)


async def test_a_reasoning_parser_that_spends_every_token_on_thinking_is_noted(repo):
    with ReasoningServer(lambda messages: (DECOY, None), mode="parser") as server:
        report = await _review(repo, server, ReviewConfig(max_output_tokens=16, thinking_tokens=8))
    # The server kept the thinking to itself: the client saw an empty answer cut by max tokens, twice.
    assert server.pieces_sent == [24, 24] and report.findings == ()
    assert any("did not end within its budget" in note for note in report.notes)


def _cli(repo, server: ReasoningServer, *args: str, env: dict | None = None):
    argv = ["review", str(repo.root), "--engine", server.url, "--no-cache", "--format", "json", *args]
    return CliRunner().invoke(app, argv, env=env)


def test_api_key_from_the_flag_or_the_environment_reaches_the_server_and_is_never_printed(repo):
    key = "sk-test-8b1f0c2e"
    repo.write("calc.py", BEFORE)
    repo.commit()
    repo.write("calc.py", CHANGED)
    with ReasoningServer(_thinker, api_key=key) as server:
        refused = _cli(repo, server, "--fail-on", "never")
        assert refused.exit_code == 2 and "check the API key" in refused.stderr and key not in refused.output
        by_flag = _cli(repo, server, "--api-key", key, "--fail-on", "never")
        by_env = _cli(repo, server, "--fail-on", "never", env={"MIMO_API_KEY": key})
    for result in (by_flag, by_env):
        assert result.exit_code == 0, result.output
        assert [f["message"] for f in json.loads(result.stdout)["findings"]] == ["subtracts"]
        assert key not in result.output
    assert f"Bearer {key}" in server.seen_authorization
    assert "MIMO_API_KEY" in CliRunner().invoke(app, ["review", "--help"]).stdout


@pytest.mark.parametrize("model_id, max_tokens", [("nano", 768), ("fake-mimo-rl", 768 + 2048)])
async def test_room_to_think_is_given_to_every_model_but_nano(repo, model_id, max_tokens):
    with ReasoningServer(_thinker, model_id=model_id) as server:
        await _review(repo, server)
    assert server.bodies[0]["max_tokens"] == max_tokens
