"""Golden cases for the post-processing filters and the whole pipeline (golden/*.toml, cursor marked ║).

A case with `language = ""` has no grammar (`language_id` names it). Each syntax-checking case runs twice: with the syntax around the cursor (the local check the server uses) and
without it (a plain re-parse of the whole document); both must agree."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import pytest

from lsp_server import postprocess
from lsp_server.documents import Document
from lsp_server.postprocess import FilterContext, run_pipeline

GOLDEN = Path(__file__).parent / "golden"
CURSOR = "║"


def _cases(name: str) -> list[dict]:
    cases = tomllib.loads((GOLDEN / name).read_text(encoding="utf-8"))["case"]
    return [pytest.param(case, id=case["description"]) for case in cases]


def _contexts(case: dict) -> list[FilterContext]:
    prefix, suffix = case["context"].split(CURSOR)
    language = case.get("language", "python") or None  # "": no grammar; language_id then names the language
    base = FilterContext(prefix, suffix, language, case.get("multiline", False), case.get("max_lines", 12),
                         language_id=case.get("language_id", language or ""))  # fmt: skip
    document = Document("file:///golden", language, prefix + suffix)
    local = FilterContext(**{**vars(base), "syntax": document.syntax_near(len(prefix))})
    return [base, local]


def _check(case: dict, filters: tuple) -> None:
    for context in _contexts(case):
        result = run_pipeline(case["completion"], context, filters)
        if case.get("dropped"):
            assert result is None, f"kept {result!r}"
        else:
            assert result == case["expected"]


@pytest.mark.parametrize("case", _cases("filters.toml"))
def test_filter(case):
    _check(case, (getattr(postprocess, case["filter"]),))


@pytest.mark.parametrize("case", _cases("pipeline.toml"))
def test_pipeline(case):
    _check(case, postprocess.PIPELINE)
