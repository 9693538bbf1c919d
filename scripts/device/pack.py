"""Collects the device run's results into $OUT: one results.json (reports, CUDA checks, bench, logs' tails) and
each variant's safetensors split in two parts (the tool returns files of at most 16 MiB)."""

import json
import sys
from pathlib import Path


def jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


runs, out = Path(sys.argv[1]), Path(sys.argv[2])
results = {"variants": {}, "check": jsonl(runs / "check.jsonl"), "bench": jsonl(runs / "bench.jsonl"), "logs": {}}
for folder in sorted(p for p in runs.iterdir() if p.is_dir()):
    variant = folder.name
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
        results["variants"].setdefault(variant, {})["config"] = json.loads(
            (folder / "model" / "config.json").read_text()
        )
(out / "results.json").write_text(json.dumps(results, indent=1))
