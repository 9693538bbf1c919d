"""A cache of model findings per review unit, keyed on the unit's content and the model, so re-running after a
small change re-reviews only the units that changed. Lines are stored relative to the unit's first line, so a
unit that only moved (code added above it) is still a hit."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, fields
from pathlib import Path

from lsp_server.review.context import ReviewUnit
from lsp_server.review.findings import SEVERITY_RANK, Finding
from lsp_server.safe_files import UnsafePath, read_beneath

PROMPT_VERSION = "review-v1"  # bump when prompts or parsing change, so old answers are not reused
MAX_ENTRY_BYTES = 1024 * 1024
_FIELDS = frozenset(f.name for f in fields(Finding))
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def default_cache_dir() -> Path:
    """The user's cache directory (~/.cache/mimo or $XDG_CACHE_HOME/mimo on Linux)."""
    import platformdirs

    return platformdirs.user_cache_path("mimo", appauthor=False) / "review"


class ReviewCache:
    def __init__(self, directory: Path | None):
        self.directory = directory  # None disables the cache

    def _file(self, unit: ReviewUnit, model: str) -> Path | None:
        if self.directory is None:
            return None
        key = unit.content_key(model, PROMPT_VERSION)
        return self.directory / key[:2] / f"{key}.json"

    def get(self, unit: ReviewUnit, model: str) -> list[Finding] | None:
        file = self._file(unit, model)
        if file is None:
            return None
        try:  # a regular file under the cache folder only, bounded: never a link, FIFO or device planted there
            stored = json.loads(read_beneath(file.parents[1], f"{file.parent.name}/{file.name}", MAX_ENTRY_BYTES))
            return [_from_relative(item, unit) for item in stored]
        except (OSError, UnsafePath, ValueError, TypeError, KeyError, AttributeError):
            return None  # a missing or damaged entry is a miss, not an error

    def put(self, unit: ReviewUnit, model: str, findings: list[Finding]) -> None:
        file = self._file(unit, model)
        if file is None:
            return
        data = [_to_relative(f, unit) for f in findings]
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            temporary = file.with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}.tmp")
            # O_EXCL | O_NOFOLLOW: a link planted at the temporary name is never written through.
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o644)
            with os.fdopen(handle, "w", encoding="ascii") as stream:
                # ASCII escapes keep lone surrogates (bytes that were not UTF-8) intact through the round trip.
                stream.write(json.dumps(data))
            temporary.replace(file)  # atomic: parallel reviews never read half an entry
        except OSError:
            pass  # a cache that cannot be written (read-only, full disk) only costs a re-review next time


def _to_relative(finding: Finding, unit: ReviewUnit) -> dict:
    data = asdict(finding)
    data["start_line"] -= unit.first_new_line
    data["end_line"] -= unit.first_new_line
    data["snippet"] = list(finding.snippet)
    return data


def _from_relative(data: dict, unit: ReviewUnit) -> Finding:
    """A stored finding back on the unit's lines; anything that does not fit a finding of this unit raises."""
    if not isinstance(data, dict) or set(data) != _FIELDS or not isinstance(data["snippet"], list):
        raise ValueError("not a stored finding")
    numbers = (data["start_line"], data["end_line"])
    columns = (data["start_column"], data["end_column"])
    texts = (data["path"], data["rule_id"], data["message"], *data["snippet"])
    if (not all(type(n) is int for n in numbers) or not all(c is None or type(c) is int for c in columns)
            or not all(isinstance(t, str) for t in texts) or not isinstance(data["replacement"], (str, type(None)))
            or data["path"] != unit.path or data["severity"] not in SEVERITY_RANK
            or data["source"] not in ("check", "model")):  # fmt: skip
        raise ValueError("a stored finding that does not belong to this unit")
    start, end = data["start_line"] + unit.first_new_line, data["end_line"] + unit.first_new_line
    if not 1 <= start <= end:
        raise ValueError("a stored finding outside its unit")
    return Finding(**{**data, "snippet": tuple(data["snippet"]), "start_line": start, "end_line": end})
