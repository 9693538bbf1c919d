"""`mimo bench decode` on the tiny checkpoint: plain and MTP figures from one run, clear errors for bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mimo.cli import app


def bench(*args: str):
    return CliRunner().invoke(app, ["bench", "decode", *args])


@pytest.mark.parametrize(("draft_tokens", "rounds"), [(1, 1), (3, 2)])
def test_json_compares_plain_and_mtp_on_the_same_prompts(tiny_model_dir, draft_tokens, rounds):
    result = bench(
        "--model",
        str(tiny_model_dir),
        "--tokens",
        "8",
        "--threads",
        "1",
        "--draft-tokens",
        str(draft_tokens),
        "--rounds",
        str(rounds),
        "--json",
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["identical"] is True
    assert figures["plain"]["tokens"] == figures["mtp"]["tokens"] > 0
    assert figures["plain"]["drafts_proposed"] == 0 < figures["mtp"]["drafts_proposed"]
    assert figures["speedup"] == pytest.approx(figures["mtp"]["tokens_per_s"] / figures["plain"]["tokens_per_s"])
    assert figures["draft_tokens"] == draft_tokens
    assert figures["prompts"] == 8 * rounds
    assert figures["mtp"]["drafts_proposed"] == draft_tokens * figures["mtp"]["mtp_steps"]
    rates = figures["acceptance_per_position"]
    assert len(rates) == draft_tokens and all(0 <= r <= 1 for r in rates)
    assert rates == sorted(rates, reverse=True)  # a later draft counts only when the earlier ones were accepted


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "tpu"], "--backend must be native or vllm"),
        (["--model", "no-such-model"], "error: no model 'no-such-model'"),
        (["--draft-tokens", "12"], "draft_tokens must be between 0 and 8"),
        (["--kernel", "avx"], "unknown kernel 'avx'"),
        (["--backend", "vllm", "--concurrency", "4"], "--concurrency is for the native backend"),
    ],
)
def test_bad_input_is_a_one_line_error(args, message):
    result = bench(*args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize("batching", ["--batching", "--no-batching"])
def test_concurrent_requests_report_throughput_over_wall_time(tiny_model_dir, batching):
    result = bench(
        "--model", str(tiny_model_dir), "--tokens", "8", "--threads", "1", "--concurrency", "4", batching, "--json"
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["concurrency"] == 4 and figures["prompts"] == 8 and figures["identical"] is True
    for mode in ("plain", "mtp"):
        assert figures[mode]["tokens_per_s"] == pytest.approx(figures[mode]["tokens"] / figures[mode]["decode_s"])
