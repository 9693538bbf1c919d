"""`mimo stats` on files that are not what it expects, and the server's telemetry on a database that is not its own:
one clear line and exit 2 (or a note), never a traceback; names from the file shown literally."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_helpers import inline, instant_options, lsp_session, open_document
from typer.testing import CliRunner

from lsp_server.telemetry import Telemetry, TelemetryError, read_stats
from mimo.cli import app

COLUMNS = "id, language, kind, lines, latency_ms, from_cache, shown_at, outcome"


def _good(path: Path) -> Path:
    store = Telemetry(path)
    for index in range(50):
        store.shown(f"id{index}", f"file:///{index}", "python", "inline", "x", 10.0 + index, False)
    store.close()
    return path


def _bad_files(tmp: Path) -> dict[str, Path]:
    files = {}
    files["not a database"] = tmp / "garbage.sqlite"
    files["not a database"].write_bytes(b"this is not sqlite " * 100)
    files["empty"] = tmp / "empty.sqlite"
    files["empty"].write_bytes(b"")
    data = _good(tmp / "good.sqlite").read_bytes()
    files["truncated"] = tmp / "truncated.sqlite"
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["foreign"] = tmp / "foreign.sqlite"
    with sqlite3.connect(files["foreign"]) as db:
        db.execute("CREATE TABLE users (id, name)")
    files["other columns"] = tmp / "other.sqlite"
    with sqlite3.connect(files["other columns"]) as db:
        db.execute("CREATE TABLE completions (x, y)")
        db.execute("INSERT INTO completions VALUES (1, 2)")
    files["a directory"] = tmp / "folder"
    files["a directory"].mkdir()
    return files


def _one_clear_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is not None
    (line,) = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("error: ")
    return line


@pytest.mark.parametrize("kind", ["not a database", "empty", "truncated", "foreign", "other columns", "a directory"])
def test_stats_on_a_file_that_is_not_a_telemetry_database_is_one_line(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    line = _one_clear_line(CliRunner().invoke(app, ["stats", "--db", str(path)]))
    assert str(path) in line
    before = path.read_bytes() if path.is_file() else None
    _one_clear_line(CliRunner().invoke(app, ["stats", "--db", str(path), "--json"]))
    assert (path.read_bytes() if path.is_file() else None) == before  # read-only: nothing written, nothing fixed


def test_stats_on_a_corrupted_database_at_the_default_path(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    (tmp_path / "mimo").mkdir()
    (tmp_path / "mimo" / "telemetry.sqlite").write_bytes(b"\x00" * 4096)
    line = _one_clear_line(CliRunner().invoke(app, ["stats"]))
    assert "telemetry.sqlite" in line


def _database_with(path: Path, rows: list[tuple]) -> Path:
    with sqlite3.connect(path) as db:  # no column types: SQLite keeps whatever it is given
        db.execute(f"CREATE TABLE completions ({COLUMNS})")
        db.executemany("INSERT INTO completions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return path


def test_unexpected_types_and_markup_in_names_are_shown_as_they_are(tmp_path):
    rows = [
        ("a", "[bold red]boom[/]", "inline", 1, 12.0, 0, 0.0, "accepted"),
        ("b", "[link=file:///etc/passwd]x[/link]", "inline", 1, 7, 0, 0.0, None),
        ("c", ":x: \x1b[31mred", "inline", 1, 5.0, 0, 0.0, "dismissed"),
        ("d", b"\xff\x00bytes", "inline", 1, 3.0, 0, 0.0, 7),
        ("e", None, "inline", 1, 4.0, 0, 0.0, None),
        ("f", "python", "inline", 1, "fast", 0, 0.0, None),  # skipped: no number
        ("g", "python", "inline", 1, None, 0, 0.0, None),
        ("h", "python", "inline", 1, float("inf"), 0, 0.0, None),
    ]
    path = _database_with(tmp_path / "t.sqlite", rows)
    result = CliRunner().invoke(app, ["stats", "--db", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for literal in ("[bold red]boom[/]", "[link=file:///etc/passwd]x[/link]", ":x: \\x1b[31mred", "unknown"):
        assert literal in result.stdout
    assert "\x1b" not in result.stdout and "skipped 3 rows" in result.stderr
    table = json.loads(CliRunner().invoke(app, ["stats", "--db", str(path), "--json"]).stdout)
    assert {row["language"] for row in table} == {
        "[bold red]boom[/]", "[link=file:///etc/passwd]x[/link]", ":x: \x1b[31mred", "\ufffd\x00bytes", "unknown"
    }  # fmt: skip


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(), st.text(max_size=30),
    st.binary(max_size=30),
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(*[_VALUES] * 7), max_size=12))
def test_any_row_values_give_a_table_or_json_never_a_traceback(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("db") / "t.sqlite"
    _database_with(path, [(str(index), *row) for index, row in enumerate(rows)])
    for args in (["--json"], []):
        result = CliRunner().invoke(app, ["stats", "--db", str(path), *args])
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
    stats = read_stats(path)
    assert sum(row.shown for row in stats.languages) + stats.skipped == len(rows)


def test_the_server_keeps_completing_when_its_database_is_not_its_own(tmp_path):
    foreign = _bad_files(tmp_path)["other columns"]
    with pytest.raises(TelemetryError, match="not a MiMo telemetry database"):
        Telemetry(foreign)


async def test_completions_survive_a_foreign_or_corrupted_telemetry_database(tmp_path, uri):
    files = _bad_files(tmp_path)
    for path in (files["other columns"], files["not a database"]):
        options = instant_options(tmp_path)
        options["telemetry"]["path"] = str(path)
        async with lsp_session(options) as client:
            open_document(client, uri, "def add(a, b):\n    \n")
            assert await inline(client, uri, 1, 4) == ["return a + b"]
            assert any("telemetry disabled" in message.message for message in client.messages)


def test_a_database_that_breaks_while_in_use_stops_recording_without_failing(tmp_path):
    store = Telemetry(_good(tmp_path / "t.sqlite"))
    store._db.execute("DROP TABLE completions")  # as if the file were replaced under the server
    store.shown("new", "file:///n", "python", "inline", "x", 1.0, False)  # no exception
    assert store.accepted("new") is False
    store.close()
