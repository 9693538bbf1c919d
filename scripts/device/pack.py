"""Collects the device run's results into $OUT: one results.json (reports, bench, logs' tails) and each variant's
safetensors split in two parts (the tool returns files of at most 16 MiB)."""
import json
import sys
from pathlib import Path

runs, out = Path(sys.argv[1]), Path(sys.argv[2])
results = {"variants": {}, "bench": [], "logs": {}}
for variant in ("A", "B", "C"):
    folder = runs / variant
    if (folder / "report.json").is_file():
        results["variants"][variant] = json.loads((folder / "report.json").read_text())
    log = runs / f"{variant}.log"
    if log.is_file():
        results["logs"][variant] = log.read_text()[-4000:]
    weights = folder / "model" / "model.safetensors"
    if weights.is_file():
        data = weights.read_bytes()
        half = len(data) // 2
        (out / f"{variant}.safetensors.part1").write_bytes(data[:half])
        (out / f"{variant}.safetensors.part2").write_bytes(data[half:])
        results["variants"].setdefault(variant, {})["config"] = json.loads((folder / "model" / "config.json").read_text())
bench = runs / "bench.jsonl"
if bench.is_file():
    results["bench"] = [json.loads(line) for line in bench.read_text().splitlines() if line.strip()]
(out / "results.json").write_text(json.dumps(results, indent=1))
