"""Splitting a reasoning model's thinking from its answer, and metering thinking in a stream."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server.reasoning import THINK_CLOSE, THINK_OPEN, ThinkingMeter, split_thinking, strip_thinking


@pytest.mark.parametrize(
    "text, answer, thinking, unterminated",
    [
        ('{"findings": []}', '{"findings": []}', "", False),
        ('<think>hmm {"findings": [1]}</think>\n{"findings": []}', '{"findings": []}', 'hmm {"findings": [1]}', False),
        ('  \n<think>a</think>{"x": 1}', '{"x": 1}', "a", False),
        ('the template opened it</think>{"x": 1}', '{"x": 1}', "the template opened it", False),
        ('<think>still going {"findings": [', "", 'still going {"findings": [', True),
        ("<think>a</think>x<think>b</think>y", "xy", "a\n\nb", False),
        ("<think>a</think>answer<think>never closed", "answer", "a\n\nnever closed", True),
        ("", "", "", False),
    ],
)
def test_thinking_is_split_from_the_answer(text, answer, thinking, unterminated):
    split = split_thinking(text)
    assert (split.answer, split.thinking, split.unterminated) == (answer, thinking, unterminated)
    assert strip_thinking(text) == answer


def test_an_answer_never_holds_a_tag_or_the_thinking():
    text = "<think>secret plan</think>result</think> tail"
    assert "secret plan" not in strip_thinking(text)


_pieces = st.lists(st.sampled_from([THINK_OPEN, THINK_CLOSE, "<", "</", "think", ">", "a", "bc\n", "{", "}"]))


def _open_chars_by_regex(text: str) -> int:
    """The reference: blocks matched left to right, each up to its first closing tag or the end of the text."""
    blocks = list(re.finditer(r"<think>(.*?)(</think>|\Z)", text, re.S))
    return len(blocks[-1][1]) if blocks and not blocks[-1][2] else 0


@settings(database=None)  # no .hypothesis folder in the checkout
@given(_pieces, st.lists(st.integers(min_value=1, max_value=9), min_size=1))
def test_the_meter_agrees_with_a_whole_text_scan_however_the_stream_is_cut(pieces, cuts):
    text = "".join(pieces)
    meter, position, index = ThinkingMeter(), 0, 0
    while position < len(text):
        size = cuts[index % len(cuts)]
        meter.feed(text[position : position + size])
        position, index = position + size, index + 1
    assert meter.text == text
    assert meter.open_chars == _open_chars_by_regex(text)
    assert split_thinking(text).unterminated == (meter.open_chars > 0 or text.rstrip().endswith(THINK_OPEN))
