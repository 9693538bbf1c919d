"""Local acceptance telemetry: one SQLite file of completions shown, accepted and dismissed, with latency.
Nothing leaves the machine; `mimo stats` reads it back.

LSP has no "shown" or "dismissed" events, so: a completion returned to the editor counts as shown; the item's
`command` (run by the editor on accept) marks it accepted; a shown completion replaced by a different one for
the same document without being accepted counts as dismissed. Typing into a suggestion keeps it the same
suggestion (the cache hands back its id), so accepting it after typing its first characters counts once.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
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


def default_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "mimo" / "telemetry.sqlite"


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


class Telemetry:
    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._pending: dict[str, str] = {}  # document uri -> id of its last shown completion

    def shown(
        self, completion_id: str, uri: str, language: str, kind: str, text: str, latency_ms: float, from_cache: bool
    ) -> None:
        if self._pending.get(uri) == completion_id:
            return  # the same suggestion again, while the user types into it
        previous = self._pending.pop(uri, None)
        if previous is not None:
            self._set_outcome(previous, "dismissed")
        self._db.execute(
            "INSERT OR REPLACE INTO completions VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            (completion_id, language, kind, text.count("\n") + 1, latency_ms, int(from_cache), time.time()),
        )
        self._pending[uri] = completion_id

    def accepted(self, completion_id: str) -> bool:
        """Marks a completion accepted; False when the id is unknown."""
        for uri, pending in list(self._pending.items()):
            if pending == completion_id:
                del self._pending[uri]
        return self._set_outcome(completion_id, "accepted", overwrite=True)

    def _set_outcome(self, completion_id: str, outcome: str, overwrite: bool = False) -> bool:
        condition = "" if overwrite else " AND outcome IS NULL"
        statement = f"UPDATE completions SET outcome = ? WHERE id = ?{condition}"
        cursor = self._db.execute(statement, (outcome, completion_id))
        return cursor.rowcount > 0

    def close(self) -> None:
        self._db.close()


def read_stats(path: Path | str) -> list[LanguageStats]:
    """Acceptance rate and latency percentiles per language, most shown first."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT language, outcome, latency_ms FROM completions").fetchall()
    by_language: dict[str, list[tuple[str | None, float]]] = {}
    for language, outcome, latency in rows:
        by_language.setdefault(language, []).append((outcome, latency))
    stats = [_summarize(language, events) for language, events in by_language.items()]
    return sorted(stats, key=lambda s: -s.shown)


def _summarize(language: str, events: list[tuple[str | None, float]]) -> LanguageStats:
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
