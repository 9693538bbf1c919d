"""Local acceptance telemetry: one SQLite file of completions shown, accepted and dismissed, with latency.
Nothing leaves the machine; `mimo stats` reads it back.

LSP has no "shown" or "dismissed" events, so: a completion returned to the editor counts as shown; the item's
`command` (run by the editor on accept) marks it accepted; a shown completion replaced by a different one for
the same document without being accepted counts as dismissed. Typing into a suggestion keeps it the same
suggestion (the cache hands back its id), so accepting it after typing its first characters counts once.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS completions (
    id TEXT PRIMARY KEY,
    language TEXT NOT NULL,
    kind TEXT NOT NULL,            -- "inline" or "popup"
    lines INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    from_cache INTEGER NOT NULL,
    shown_at REAL NOT NULL,
    outcome TEXT                   -- NULL while pending, then "accepted" or "dismissed"
);
"""


log = logging.getLogger(__name__)


def default_path() -> Path:
    """The user's data directory (~/.local/share/mimo or $XDG_DATA_HOME/mimo on Linux) holds the database."""
    import platformdirs

    return platformdirs.user_data_path("mimo", appauthor=False) / "telemetry.sqlite"


@dataclass(frozen=True)
class LanguageStats:
    language: str
    shown: int
    accepted: int
    dismissed: int
    acceptance_rate: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float


class TelemetryError(Exception):
    """The telemetry database cannot be used; the message says which file and what to do."""


_COLUMNS = ("id", "language", "kind", "lines", "latency_ms", "from_cache", "shown_at", "outcome")


class Telemetry:
    """The writer the server keeps open. It never fails a completion: a database that breaks while in use (a
    full disk, a file deleted or replaced) is logged once and recording stops."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.executescript(_SCHEMA)
            _check_columns(self._db, self.path)
        except sqlite3.Error as exc:
            raise TelemetryError(f"{self.path} is not a usable telemetry database ({exc})") from None
        self._pending: dict[str, str] = {}  # document uri -> id of its last shown completion
        self._broken = False

    def shown(
        self, completion_id: str, uri: str, language: str, kind: str, text: str, latency_ms: float, from_cache: bool
    ) -> None:
        if self._pending.get(uri) == completion_id:
            return  # the same suggestion again, while the user types into it
        previous = self._pending.pop(uri, None)
        if previous is not None:
            self._set_outcome(previous, "dismissed")
        row = (completion_id, language, kind, text.count("\n") + 1, latency_ms, int(from_cache), time.time())
        if self._write("INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?, ?, NULL)", row) is not None:
            self._pending[uri] = completion_id

    def accepted(self, completion_id: str) -> bool:
        """Marks a completion accepted; False when the id is unknown."""
        for uri, pending in list(self._pending.items()):
            if pending == completion_id:
                del self._pending[uri]
        return self._set_outcome(completion_id, "accepted", overwrite=True)

    def _set_outcome(self, completion_id: str, outcome: str, overwrite: bool = False) -> bool:
        condition = "" if overwrite else " AND outcome IS NULL"
        cursor = self._write(f"UPDATE completions SET outcome = ? WHERE id = ?{condition}", (outcome, completion_id))
        return cursor is not None and cursor.rowcount > 0

    def _write(self, statement: str, values: tuple) -> sqlite3.Cursor | None:
        if self._broken:
            return None
        try:
            return self._db.execute(statement, values)
        except sqlite3.Error as exc:
            self._broken = True
            log.warning("telemetry stopped: %s cannot be written (%s)", self.path, exc)
            return None

    def close(self) -> None:
        self._db.close()


def _check_columns(db: sqlite3.Connection, path: Path) -> None:
    columns = tuple(row[1] for row in db.execute("PRAGMA table_info(completions)"))
    if columns != _COLUMNS:
        raise TelemetryError(
            f"{path} is not a MiMo telemetry database (its completions table has columns {', '.join(columns)}); "
            "point telemetry.path or --db at another file"
        )


@dataclass(frozen=True)
class StatsReport:
    languages: list[LanguageStats]  # most shown first
    skipped: int  # rows whose latency was missing or not a finite number


def read_stats(path: Path | str) -> StatsReport:
    """Acceptance rate and latency percentiles per language, most shown first. Opened read-only; any file that
    is not a readable telemetry database raises TelemetryError with one line saying so. Values of unexpected
    types are read as text (languages) or skipped (latencies), never trusted."""
    path = Path(path)
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            _check_readable(db, path)
            rows = db.execute("SELECT language, outcome, latency_ms FROM completions").fetchall()
    except sqlite3.Error as exc:
        raise TelemetryError(f"{path} cannot be read as a telemetry database ({exc})") from None
    by_language: dict[str, list[tuple[object, float]]] = {}
    skipped = 0
    for language, outcome, latency in rows:
        if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not math.isfinite(latency):
            skipped += 1
            continue
        by_language.setdefault(_as_text(language), []).append((outcome, float(latency)))
    stats = [_summarize(language, events) for language, events in by_language.items()]
    return StatsReport(sorted(stats, key=lambda s: -s.shown), skipped)


def _check_readable(db: sqlite3.Connection, path: Path) -> None:
    columns = {row[1] for row in db.execute("PRAGMA table_info(completions)")}
    if not {"language", "outcome", "latency_ms"} <= columns:
        raise TelemetryError(
            f"{path} is not a MiMo telemetry database (no completions table with language, outcome and latency_ms)"
        )


def _as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "unknown" if value is None else str(value)


def _summarize(language: str, events: list[tuple[object, float]]) -> LanguageStats:
    accepted = sum(1 for outcome, _ in events if outcome == "accepted")
    dismissed = sum(1 for outcome, _ in events if outcome == "dismissed")
    latencies = sorted(latency for _, latency in events)
    return LanguageStats(
        language=language,
        shown=len(events),
        accepted=accepted,
        dismissed=dismissed,
        acceptance_rate=accepted / len(events),
        latency_p50_ms=percentile(latencies, 50),
        latency_p90_ms=percentile(latencies, 90),
        latency_p99_ms=percentile(latencies, 99),
    )


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
