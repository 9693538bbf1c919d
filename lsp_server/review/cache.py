"""A cache of model findings per review unit, keyed on the unit's content and the model, so re-running after a
small change re-reviews only the units that changed. Lines are stored relative to the unit's first line, so a
unit that only moved (code added above it) is still a hit."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path

from lsp_server.review.context import ReviewUnit
from lsp_server.review.findings import Finding

PROMPT_VERSION = "review-v1"  # bump when prompts or parsing change, so old answers are not reused


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mimo" / "review"


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
        if file is None or not file.is_file():
            return None
        try:
            stored = json.loads(file.read_text(encoding="utf-8"))
            return [_from_relative(item, unit) for item in stored]
        except (OSError, ValueError, TypeError, KeyError):
            return None  # a damaged entry is a miss, not an error

    def put(self, unit: ReviewUnit, model: str, findings: list[Finding]) -> None:
        file = self._file(unit, model)
        if file is None:
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        data = [_to_relative(f, unit) for f in findings]
        temporary = file.with_suffix(f".{os.getpid()}.tmp")
        # ASCII escapes keep lone surrogates (bytes that were not UTF-8) intact through the round trip.
        temporary.write_text(json.dumps(data), encoding="ascii")
        temporary.replace(file)  # atomic: parallel reviews never read half an entry


def _to_relative(finding: Finding, unit: ReviewUnit) -> dict:
    data = asdict(finding)
    data["start_line"] -= unit.first_new_line
    data["end_line"] -= unit.first_new_line
    data["snippet"] = list(finding.snippet)
    return data


def _from_relative(data: dict, unit: ReviewUnit) -> Finding:
    finding = Finding(**{**data, "snippet": tuple(data["snippet"])})
    return replace(
        finding, start_line=finding.start_line + unit.first_new_line, end_line=finding.end_line + unit.first_new_line
    )
