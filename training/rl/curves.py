"""The curves of RL runs as one SVG: a panel per figure, a line per run, from each run's ``summary.json`` history.

    python -m training.rl.curves runs/proof/rl-s0 runs/proof/rl-s1 --out docs/img/rl-curves.svg

Written by hand (a few polylines) so the docs' figures need no plotting library in the project's environment.
Each line is smoothed with a running mean over ``window`` steps; the raw per-step values are noisy with a few
groups per step.
"""

from __future__ import annotations

import argparse
import json
from html import escape
from pathlib import Path

PANELS = (
    ("reward", "reward (mean over rollouts)"),
    ("rollout/pass_rate", "rollouts passing every test"),
    ("dynamic/dropped_share", "share of groups dropped"),
    ("curriculum/easy_pool", "easy-pool size"),
    ("entropy", "entropy (nats / token)"),
    ("completions/mean_length", "completion length (tokens)"),
    ("rollout/mtp_acceptance", "MTP draft acceptance"),
    ("time/generation_s", "generation seconds / step"),
)
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT, PAD = 300, 170, 34


def smooth(values: list[float], window: int) -> list[float]:
    out = []
    for index in range(len(values)):
        chunk = values[max(0, index - window + 1) : index + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def panel(title: str, series: list[tuple[str, list[float]]], x: int, y: int) -> str:
    values = [v for _, line in series for v in line]
    if not values:
        return ""
    low, high = min(values), max(values)
    high = high if high > low else low + 1.0
    steps = max(len(line) for _, line in series)
    parts = [f'<text x="{x + PAD}" y="{y + 14}" font-size="12">{escape(title)}</text>',
             f'<rect x="{x + PAD}" y="{y + 20}" width="{WIDTH - PAD - 8}" height="{HEIGHT - 48}" fill="none" '
             f'stroke="#bbb"/>',
             f'<text x="{x + PAD - 4}" y="{y + 28}" font-size="9" text-anchor="end">{high:.3g}</text>',
             f'<text x="{x + PAD - 4}" y="{y + HEIGHT - 28}" font-size="9" text-anchor="end">{low:.3g}</text>',
             f'<text x="{x + WIDTH - 8}" y="{y + HEIGHT - 16}" font-size="9" text-anchor="end">step {steps}</text>']  # fmt: skip
    for colour, (_, line) in zip(COLOURS, series):
        if not line:  # this run did not log the figure
            continue
        points = " ".join(
            f"{x + PAD + (WIDTH - PAD - 8) * i / max(steps - 1, 1):.1f},"
            f"{y + 20 + (HEIGHT - 48) * (1 - (v - low) / (high - low)):.1f}"
            for i, v in enumerate(line)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
    return "\n".join(parts)


def render(runs: dict[str, list[dict]], window: int = 5, columns: int = 4) -> str:
    """An SVG with a panel per figure of ``PANELS`` that any run logged, and a legend of the runs."""
    shown = [(key, title) for key, title in PANELS if any(key in r for history in runs.values() for r in history)]
    rows = (len(shown) + columns - 1) // columns
    body = []
    for index, (key, title) in enumerate(shown):
        series = [(name, smooth([r[key] for r in history if key in r], window)) for name, history in runs.items()]
        body.append(panel(title, series, (index % columns) * WIDTH, (index // columns) * HEIGHT))
    legend_y = rows * HEIGHT + 12
    for index, name in enumerate(runs):
        colour = COLOURS[index % len(COLOURS)]
        body.append(f'<rect x="{PAD + 150 * index}" y="{legend_y - 9}" width="12" height="3" fill="{colour}"/>'
                    f'<text x="{PAD + 16 + 150 * index}" y="{legend_y - 4}" font-size="11">{escape(name)}</text>')  # fmt: skip
    width, height = columns * WIDTH, legend_y + 8
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">\n'
            f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (each with summary.json)")
    parser.add_argument("--out", type=Path, required=True, help="the SVG file to write")
    parser.add_argument("--window", type=int, default=5, help="running-mean window, in steps")
    args = parser.parse_args(argv)
    runs = {}
    for folder in args.runs:
        summary = folder / "summary.json"
        if not summary.is_file():
            parser.error(f"{summary} does not exist: pass the folders `mimo train rl --out` wrote")
        runs[folder.name] = json.loads(summary.read_text(encoding="utf-8"))["history"]
    args.out.write_text(render(runs, args.window), encoding="utf-8")


if __name__ == "__main__":
    main()
