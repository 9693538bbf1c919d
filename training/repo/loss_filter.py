"""The second filter: files the base model itself finds extreme.

The rule filters of the data pipeline catch what a path or a byte pattern gives away (vendored, generated,
minified, binary files). What they miss shows in the base model's loss per token: random or encoded data,
long tables of numbers, prose in another language score far above the repository's typical file; boilerplate
the model can already recite scores far below it. Both teach a small model little and pull a fine-tune away
from the repository's code. A file is rejected when its loss lies outside

    [median / LOW_RATIO,  max(median * HIGH_RATIO, median + HIGH_SPREAD * robust spread)]

where the robust spread is 1.4826 x the median absolute deviation (the standard deviation, for a normal
distribution). Both bounds scale with the repository: a model that knows the language well gets tighter ones.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

HIGH_RATIO = 1.6  # a file must be at least this many times the median loss to count as extreme ...
HIGH_SPREAD = 4.0  # ... and this many robust standard deviations above it
LOW_RATIO = 8.0  # a file below median / 8 (e.g. 0.2 nats when the median is 1.6) is recited, not learnt
MIN_FILES = 5  # fewer files give no meaningful median: nothing is rejected
MIN_TOKENS = 64  # a shorter file's loss is mostly its first tokens' surprise: it is kept unjudged


@dataclass(frozen=True)
class Verdict:
    keep: bool
    reason: str = ""  # "loss-high" or "loss-low" when rejected
    detail: str = ""


@dataclass(frozen=True)
class Bounds:
    low: float
    high: float
    median: float


def loss_bounds(losses: list[float]) -> Bounds | None:
    """The accepted range for these per-file losses; None when there are too few files to judge."""
    if len(losses) < MIN_FILES:
        return None
    median = statistics.median(losses)
    spread = 1.4826 * statistics.median(abs(loss - median) for loss in losses)
    return Bounds(low=median / LOW_RATIO, high=max(median * HIGH_RATIO, median + HIGH_SPREAD * spread), median=median)


def judge(loss: float, bounds: Bounds | None) -> Verdict:
    if bounds is None:
        return Verdict(True)
    if loss > bounds.high:
        return Verdict(False, "loss-high", f"loss {loss:.2f} > {bounds.high:.2f} (median {bounds.median:.2f})")
    if loss < bounds.low:
        return Verdict(False, "loss-low", f"loss {loss:.2f} < {bounds.low:.2f} (median {bounds.median:.2f})")
    return Verdict(True)
