"""Each output format: SARIF against the vendored 2.1.0 schema, rdjson's field rules, our JSON schema, GitHub
annotation escaping, the text report; column conversions checked on lines with non-ASCII text."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from rich.cells import cell_len

from lsp_server.review.findings import Finding
from lsp_server.review.report import FORMATS, render
from lsp_server.review.report.github import annotation
from lsp_server.review.report.sarif import SCHEMA_PATH
from lsp_server.review.runner import ReviewReport

# é is 2 UTF-8 bytes and 1 UTF-16 unit, 😀 4 bytes and 2 units, 中 3 bytes and 1 unit.
LINE = '    s = "é😀中" + name'
NAME_AT = LINE.index("name")
COLUMNED = Finding("src/ü.py", 7, 7, "error", "mimo/syntax-error", "bad name", start_column=NAME_AT,
                   end_column=NAME_AT + 4, source="check", snippet=(LINE,))  # fmt: skip
SUGGESTED = Finding("src/ü.py", 9, 10, "warning", "review/use-fstring", "use an f-string\nplease",
                    replacement='    s = f"é😀中{name}"', snippet=(LINE, "    t = 1"))  # fmt: skip
WHOLE_LINE = Finding("a,b:c.txt", 1, 1, "note", "review/typo", "100% sure", snippet=("hello",))
REPORT = ReviewReport((COLUMNED, SUGGESTED, WHOLE_LINE), "fake-reviewer", files=2, units=3, chunks=1)
REPORT_SCHEMA = Path(__file__).resolve().parents[3] / "lsp_server/review/report/mimo-review.schema.json"


def _parsed(fmt: str, report: ReviewReport = REPORT) -> dict:
    return json.loads(render(fmt, report))


def test_sarif_validates_against_the_2_1_0_schema():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft4Validator(schema).validate(_parsed("sarif"))
    empty = ReviewReport((), None, files=0)
    jsonschema.Draft4Validator(schema).validate(_parsed("sarif", empty))


def test_sarif_columns_count_utf16_units_and_rules_are_indexed():
    run = _parsed("sarif")["runs"][0]
    result = run["results"][0]
    region = result["locations"][0]["physicalLocation"]["region"]
    units = LINE.encode("utf-16-le")
    start = (region["startColumn"] - 1) * 2
    assert units[start:].decode("utf-16-le").startswith("name")
    assert region["endColumn"] - region["startColumn"] == 4
    rules = run["tool"]["driver"]["rules"]
    assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == "mimo/syntax-error"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/%C3%BC.py"


def test_sarif_fix_replaces_the_whole_lines():
    result = _parsed("sarif")["runs"][0]["results"][1]
    (change,) = result["fixes"][0]["artifactChanges"]
    (replacement,) = change["replacements"]
    assert replacement["deletedRegion"] == {"startLine": 9, "startColumn": 1, "endLine": 10, "endColumn": 10}
    assert replacement["insertedContent"]["text"] == SUGGESTED.replacement
    assert "fixes" not in _parsed("sarif")["runs"][0]["results"][0]


def test_sarif_fingerprints_survive_line_shifts_and_tell_findings_apart():
    def fingerprints(report):
        results = _parsed("sarif", report)["runs"][0]["results"]
        return [result["partialFingerprints"]["primaryLocationLineHash"] for result in results]

    moved = ReviewReport(tuple(replace(f, start_line=f.start_line + 30, end_line=f.end_line + 30)
                               for f in REPORT.findings), "fake-reviewer", files=2)  # fmt: skip
    assert fingerprints(moved) == fingerprints(REPORT)
    assert len(set(fingerprints(REPORT))) == 3
    twice = ReviewReport((WHOLE_LINE, replace(WHOLE_LINE, start_line=5, end_line=5)), None, files=1)
    assert fingerprints(twice)[0] != fingerprints(twice)[1]  # same text twice: occurrence counter differs


def test_rdjson_field_rules_and_utf8_byte_columns():
    output = _parsed("rdjson")
    assert output["source"]["name"] == "mimo-review"
    for diagnostic in output["diagnostics"]:
        assert diagnostic["message"] and diagnostic["location"]["path"]
        assert diagnostic["severity"] in ("ERROR", "WARNING", "INFO")
        start, end = diagnostic["location"]["range"]["start"], diagnostic["location"]["range"]["end"]
        assert start["line"] >= 1 and start["column"] >= 1
        assert (end["line"], end["column"]) >= (start["line"], start["column"])
        assert diagnostic["code"]["value"].startswith(("mimo/", "review/"))
    columned, suggested, whole = output["diagnostics"]
    raw = LINE.encode("utf-8")
    begin, stop = columned["location"]["range"]["start"]["column"], columned["location"]["range"]["end"]["column"]
    assert raw[begin - 1 : stop - 1] == b"name"
    (suggestion,) = suggested["suggestions"]
    assert suggestion["text"] == SUGGESTED.replacement
    assert suggestion["range"]["end"] == {"line": 10, "column": len(b"    t = 1") + 1}
    assert whole["severity"] == "INFO" and "suggestions" not in whole


def test_json_follows_our_documented_schema():
    schema = json.loads(REPORT_SCHEMA.read_text())
    output = _parsed("json")
    jsonschema.Draft7Validator(schema).validate(output)
    assert output["summary"]["by_severity"] == {"error": 1, "warning": 1, "note": 1}
    first = output["findings"][0]
    assert LINE[first["start_column"] - 1 : first["end_column"] - 1] == "name"  # 1-based characters
    assert output["findings"][2]["start_column"] is None


def test_bytes_that_were_not_utf8_come_out_as_replacement_characters():
    broken = replace(WHOLE_LINE, snippet=("caf\udce9",), message="bad byte \udce9")
    for fmt in ("json", "sarif", "rdjson"):
        text = render(fmt, ReviewReport((broken,), None, files=1))
        text.encode("utf-8")  # no lone surrogates left
        assert "\ufffd" in text


def test_github_annotations_escape_data_and_properties():
    assert annotation(WHOLE_LINE) == ("::notice file=a%2Cb%3Ac.txt,line=1,endLine=1,title=review/typo::100%25 sure")
    line = annotation(SUGGESTED)
    assert line.startswith("::warning file=src/ü.py,line=9,endLine=10,") and line.endswith("use an f-string%0Aplease")
    assert f"col={NAME_AT + 1},endColumn={NAME_AT + 4}" in annotation(COLUMNED)  # 1-based, end inclusive
    assert render("github", REPORT).count("\n") == 3


def test_text_report_names_the_model_and_sums_up():
    text = render("text", REPORT)
    assert "Reviewed by fake-reviewer" in text
    assert "src/ü.py" in text and "suggestion:" in text and 'f"é😀中{name}"' in text
    assert "3 finding(s) in 2 changed file(s): 1 error, 1 warning, 1 note." in text
    assert "Deterministic checks only" in render("text", ReviewReport((), None, files=0))
    lines = text.splitlines()
    caret_row = next(i for i, line in enumerate(lines) if line.endswith("^^^^"))
    source = lines[caret_row - 1]
    assert lines[caret_row].index("^") == cell_len(source[: source.index("name")])  # 😀 and 中 take two cells


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_an_empty_report(fmt):
    assert render(fmt, ReviewReport((), None, files=0)) is not None
