"""Acceptance telemetry through the server, `mimo stats`, `mimo complete`, `mimo lsp` input errors, and
streaming early stop."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

import pytest
from lsp_helpers import debug_stats, edit, inline, instant_options, lsp_session, open_document
from lsprotocol import types as lsp
from typer.testing import CliRunner

from lsp_server.fixits import minimal_edit
from lsp_server.telemetry import Telemetry, percentile, read_stats
from mimo.cli import app


async def test_accept_command_and_superseded_suggestions_are_recorded(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        result = await client.text_document_inline_completion_async(
            lsp.InlineCompletionParams(
                text_document=lsp.TextDocumentIdentifier(uri), position=lsp.Position(1, 4),
                context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Invoked),
            )
        )  # fmt: skip
        command = result.items[0].command
        accepted = await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command=command.command, arguments=command.arguments)
        )
        assert accepted is True
        edit(client, uri, 2, 1, 4, "return a + b\n    ")
        await inline(client, uri, 2, 4)  # shown, then replaced by the next request: dismissed
        edit(client, uri, 3, 2, 4, "\n    ")
        await inline(client, uri, 3, 4)
    (python,) = read_stats(tmp_path / "telemetry.sqlite").languages
    assert (python.language, python.shown, python.accepted, python.dismissed) == ("python", 3, 1, 1)
    assert python.acceptance_rate == pytest.approx(1 / 3)


async def test_typing_into_a_suggestion_then_accepting_counts_one_accepted_suggestion(tmp_path, uri):
    async with lsp_session(instant_options(tmp_path)) as client:
        open_document(client, uri, "def add(a, b):\n    \n")
        assert await inline(client, uri, 1, 4) == ["return a + b"]
        edit(client, uri, 2, 1, 4, "ret")
        result = await client.text_document_inline_completion_async(
            lsp.InlineCompletionParams(
                text_document=lsp.TextDocumentIdentifier(uri), position=lsp.Position(1, 7),
                context=lsp.InlineCompletionContext(trigger_kind=lsp.InlineCompletionTriggerKind.Automatic),
            )
        )  # fmt: skip
        (item,) = result.items
        assert item.insert_text == "urn a + b"
        await client.workspace_execute_command_async(
            lsp.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments)
        )
    (python,) = read_stats(tmp_path / "telemetry.sqlite").languages
    assert (python.shown, python.accepted, python.dismissed) == (1, 1, 0)


def test_stats_command_prints_rates_per_language(tmp_path):
    store = Telemetry(tmp_path / "t.sqlite")
    for index, (language, latency) in enumerate([("python", 40.0), ("python", 60.0), ("go", 90.0)]):
        store.shown(f"id{index}", f"file:///{index}", language, "inline", "x", latency, False)
    store.accepted("id0")
    store.close()
    result = CliRunner().invoke(app, ["stats", "--db", str(tmp_path / "t.sqlite"), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["language"]: row for row in json.loads(result.stdout)}
    assert rows["python"]["acceptance_rate"] == 0.5 and rows["go"]["acceptance_rate"] == 0.0
    assert rows["python"]["latency_p50_ms"] == 40.0 and rows["python"]["latency_p99_ms"] == 60.0
    table = CliRunner().invoke(app, ["stats", "--db", str(tmp_path / "t.sqlite")])
    assert "python" in table.stdout and "50.0%" in table.stdout


def test_stats_without_a_database_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(app, ["stats", "--db", str(tmp_path / "none.sqlite")])
    assert result.exit_code == 2 and "no telemetry database" in result.output


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile([], 50)) == (50.0, 99.0, 0.0)


def test_complete_command_rejects_positions_outside_the_file_before_loading_a_model(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("x = 1\n")
    result = CliRunner().invoke(app, ["complete", str(source), "--line", "9", "--col", "1", "--model", "/nowhere"])
    assert result.exit_code == 2 and "--line 9 is outside the file" in result.output
    missing = CliRunner().invoke(app, ["complete", str(tmp_path / "gone.py"), "--line", "1", "--col", "1"])
    assert missing.exit_code == 2 and "no such file" in missing.output


@pytest.mark.slow
def test_complete_command_runs_the_pipeline_with_a_real_model(tmp_path, tiny_model_dir):
    source = tmp_path / "m.py"
    source.write_text("def add(a, b):\n    return a\n")
    args = ["complete", str(source), "--line", "2", "--col", "13", "--model", str(tiny_model_dir), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert (payload["line"], payload["column"], payload["language"], payload["multiline"]) == (2, 13, "python", False)
    assert "\n" not in payload["text"]


def test_lsp_command_rejects_a_bad_tcp_address():
    result = CliRunner().invoke(app, ["lsp", "--tcp", "localhost"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output


async def test_streaming_stops_once_the_single_line_is_complete(tmp_path, uri):
    options = instant_options(tmp_path, text="return a + b\n    print(a)\n    print(b)\n")
    async with lsp_session(options) as client:
        open_document(client, uri, "def add(a, b):\n    x = 1\n    \n")  # a body exists: single line
        assert await inline(client, uri, 2, 4) == ["return a + b"]
        stats = await debug_stats(client)
        assert stats["stopped_early"] == 1 and stats["engine_streams"]["closed_early"] == 1


def test_minimal_edit_keeps_only_the_changed_middle():
    text = "a = 1\nb = (2\nc = 3\n"
    start, end = text.index("b"), text.index("c")
    edit = minimal_edit(text, start, end, "b = (2)\n")
    assert (text[: edit.start] + edit.new_text + text[edit.end :]) == "a = 1\nb = (2)\nc = 3\n"
    assert edit.new_text == ")" and edit.start == edit.end


@pytest.mark.slow
def test_bench_lsp_measures_answered_cache_missing_requests():
    result = CliRunner().invoke(app, ["bench", "lsp", "--rounds", "5", "--model-rounds", "0", "--json"])
    assert result.exit_code == 0, result.output
    (overhead,) = json.loads(result.stdout)
    assert overhead["requests"] == 5 and overhead["answered"] == 5
    assert overhead["engine_calls"] == 5 + 10  # every round (and warm-up) asked the engine: no cache hits
    assert 0 < overhead["p50_ms"] <= overhead["p90_ms"] <= overhead["p99_ms"]


async def test_lsp_over_tcp_answers_initialize():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mimo.cli", "lsp", "--tcp", f"127.0.0.1:{port}", stderr=asyncio.subprocess.DEVNULL
    )
    try:
        for _ in range(200):
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}})
        writer.write(f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
        await writer.drain()
        header = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        length = int(header.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        answer = json.loads(await reader.readexactly(length))
        assert answer["id"] == 1 and "inlineCompletionProvider" in answer["result"]["capabilities"]
        writer.close()
    finally:
        server.kill()
        await server.wait()
