"""The tolerant parser, anchoring to changed lines, and the suggestion check."""

from __future__ import annotations

import json

import pytest

from lsp_server.review.context import ReviewUnit
from lsp_server.review.diff import DiffLine
from lsp_server.review.findings import (
    FindingsParseError,
    anchor,
    apply_replacement,
    normalize_rule,
    parse_model_answer,
    sort_and_limit,
)

AFTER = "def area(r):\n    pi = 3.14\n    return pi * r * r\n"
UNIT = ReviewUnit(
    "geo.py", "python",
    (DiffLine(" ", "def area(r):", 1, 1), DiffLine("-", "    return 3.14 * r", 2, None),
     DiffLine("+", "    pi = 3.14", None, 2), DiffLine("+", "    return pi * r * r", None, 3)),
)  # fmt: skip


@pytest.mark.parametrize(
    "answer",
    [
        '{"findings": [{"path": "a.py", "start_line": 1, "message": "m"}]}',
        'Sure! ```json\n{"findings": [{"path": "a.py", "start_line": 1, "message": "m",}],}\n``` Hope it helps.',
        '[{"path": "a.py", "start_line": 1, "message": "m"}]',
    ],
)
def test_parser_tolerates_fences_prose_bare_lists_and_trailing_commas(answer):
    assert parse_model_answer(answer)[0]["message"] == "m"


@pytest.mark.parametrize("answer", ["no findings here", '{"findings": [', '{"issues": []}'])
def test_parser_rejects_answers_without_findings(answer):
    with pytest.raises(FindingsParseError):
        parse_model_answer(answer)


def test_findings_outside_changed_lines_are_dropped():
    items = [
        {"path": "geo.py", "start_line": 1, "end_line": 1, "severity": "warning", "rule": "x", "message": "ctx"},
        {"path": "geo.py", "start_line": 3, "severity": "high", "rule": "Magic Number!", "message": "use math.pi"},
        {"path": "other.py", "start_line": 3, "message": "wrong file"},
        {"path": "geo.py", "start_line": 2, "message": ""},
    ]
    found = anchor(items, [UNIT], {"geo.py": AFTER})
    assert [(f.start_line, f.severity, f.rule_id) for f in found] == [(3, "error", "review/magic-number")]
    assert found[0].snippet == ("    return pi * r * r",)


def test_a_parseable_suggestion_is_kept_and_a_breaking_one_dropped():
    good = {"path": "geo.py", "start_line": 2, "message": "m", "replacement": "    pi = math.pi\n"}
    bad = {"path": "geo.py", "start_line": 3, "message": "m", "replacement": "    return (pi * r * r"}
    same = {"path": "geo.py", "start_line": 2, "message": "m", "replacement": "    pi = 3.14"}
    kept, dropped, unchanged = anchor([good, bad, same], [UNIT], {"geo.py": AFTER})
    assert kept.replacement == "    pi = math.pi"
    assert apply_replacement(AFTER, kept) == AFTER.replace("3.14", "math.pi")
    assert dropped.replacement is None and unchanged.replacement is None


def test_a_suggestion_that_cannot_be_checked_is_dropped():
    item = {"path": "geo.py", "start_line": 2, "message": "m", "replacement": "    pi = math.pi"}
    assert anchor([item], [UNIT], {"geo.py": None})[0].replacement is None


def test_ranges_are_clamped_to_the_unit_and_the_only_path_is_assumed():
    found = anchor([{"start_line": 2, "end_line": 99, "message": "m"}], [UNIT], {"geo.py": AFTER})
    assert (found[0].path, found[0].start_line, found[0].end_line) == ("geo.py", 2, 3)


def test_rules_are_stable_slugs():
    assert normalize_rule("Unused Variable") == normalize_rule("unused-variable") == "review/unused-variable"
    assert normalize_rule(None) == "review/general"


def test_sort_puts_errors_and_checks_first_and_limits():
    items = [{"path": "geo.py", "start_line": 2, "severity": s, "message": s} for s in ("note", "error", "warning")]
    found = anchor(items, [UNIT], {"geo.py": AFTER})
    assert [f.severity for f in sort_and_limit(found, 2)] == ["error", "warning"]


def test_the_answer_schema_accepts_what_the_prompt_asks_for_and_the_parser_reads():
    import jsonschema

    from lsp_server.review.findings import FINDINGS_SCHEMA

    answer = {"findings": [{"path": "geo.py", "start_line": 3, "end_line": 3, "severity": "warning",
                            "rule": "magic-number", "message": "use math.pi", "replacement": None}]}  # fmt: skip
    jsonschema.validate(answer, FINDINGS_SCHEMA)
    assert anchor(parse_model_answer(json.dumps(answer)), [UNIT], {"geo.py": AFTER})[0].rule_id == "review/magic-number"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"findings": [{"path": "geo.py", "severity": "fatal"}]}, FINDINGS_SCHEMA)
