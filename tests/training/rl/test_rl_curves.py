"""The SVG curves of RL runs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from training.rl.curves import main, render, smooth


def test_smoothing_is_a_trailing_running_mean():
    assert smooth([0, 2, 4, 6], 2) == [0, 1, 3, 5]


def test_a_panel_per_logged_figure_and_a_line_per_run(tmp_path):
    runs = {
        "a": [{"reward": 0.1 * i, "entropy": 1.0 - 0.1 * i} for i in range(6)],
        "b": [{"reward": 0.2 * i} for i in range(6)],
    }
    svg = ET.fromstring(render(runs, window=1))
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 3  # reward: a and b; entropy: a only
    titles = [t.text for t in svg.findall("{http://www.w3.org/2000/svg}text")]
    assert "reward (mean over rollouts)" in titles and "entropy (nats / token)" in titles
    assert "share of groups dropped" not in titles
    for name, history in runs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({"history": history}))
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c.svg")])
    assert (tmp_path / "c.svg").read_text().startswith("<svg")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing"), "--out", str(tmp_path / "d.svg")])
