"""Answers of reasoning models (MiMo-7B-RL, DeepSeek-R1, Qwen3...) that think before they answer, in
``<think>…</think>``: the thinking is split from the answer, so no caller parses, shows or feeds back the model's
scratch work, and a stream whose thinking runs past a budget is cut off instead of spending the whole answer.

Shapes handled (a server without a reasoning parser passes the thinking through in the answer's text):
- ``<think>…</think>answer``: the usual form; leading whitespace before the tag is allowed.
- ``…</think>answer`` with no opening tag: the chat template put ``<think>`` in the prompt (Qwen3, DeepSeek-R1).
- ``<think>…`` never closed: cut by max tokens or by the budget; there is no answer at all.
- further ``<think>`` blocks after the answer started: removed too (thinking is never part of an answer).
A server with a reasoning parser (vLLM's ``--reasoning-parser``) sends the thinking in a separate field that
clients here never read, so its answers carry no tags and pass through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.api import Engine, FinishReason, GenerationRequest

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class SplitAnswer:
    answer: str  # the text a caller should use: everything outside the thinking, stripped of the tags
    thinking: str  # the thinking text, blocks joined by a blank line (for logs and lengths, never for users)
    unterminated: bool  # a thinking block was still open at the end: whatever came after its tag is thinking


def split_thinking(text: str) -> SplitAnswer:
    """Splits a model's text into its answer and its thinking (see the module docstring for the shapes)."""
    thoughts: list[str] = []
    first_open, first_close = text.find(THINK_OPEN), text.find(THINK_CLOSE)
    if first_close >= 0 and (first_open < 0 or first_close < first_open):
        thoughts.append(text[:first_close])  # the opening tag was in the prompt
        text = text[first_close + len(THINK_CLOSE) :]
    answer: list[str] = []
    while (start := text.find(THINK_OPEN)) >= 0:
        answer.append(text[:start])
        end = text.find(THINK_CLOSE, start + len(THINK_OPEN))
        if end < 0:
            thoughts.append(text[start + len(THINK_OPEN) :])
            return SplitAnswer("".join(answer).strip(), "\n\n".join(thoughts), unterminated=True)
        thoughts.append(text[start + len(THINK_OPEN) : end])
        text = text[end + len(THINK_CLOSE) :]
    answer.append(text)
    return SplitAnswer("".join(answer).strip(), "\n\n".join(thoughts), unterminated=False)


def strip_thinking(text: str) -> str:
    """The answer alone; empty when the model never finished thinking."""
    return split_thinking(text).answer


class ThinkingMeter:
    """Follows a stream piece by piece and says how long the thinking block open at its end is, in characters
    (0 when none is open). Linear in the stream's length: each piece is scanned once, plus a tag's length
    before it, so a tag split across pieces is still found. A thinking block whose opening tag was in the
    prompt is only known when it closes (``split_thinking`` handles it then); max tokens bounds it meanwhile."""

    def __init__(self) -> None:
        self.text = ""
        self._resume = 0  # where the next scan starts: after the last tag found
        self._open_at: int | None = None  # where the open block's text starts

    def feed(self, piece: str) -> int:
        position = max(self._resume, len(self.text) - len(THINK_CLOSE))
        self.text += piece
        while True:
            if self._open_at is None:
                found = self.text.find(THINK_OPEN, position)
                if found < 0:
                    break
                self._open_at = position = found + len(THINK_OPEN)
            else:
                found = self.text.find(THINK_CLOSE, position)
                if found < 0:
                    break
                self._open_at, position = None, found + len(THINK_CLOSE)
            self._resume = position
        return self.open_chars

    @property
    def open_chars(self) -> int:
        return 0 if self._open_at is None else len(self.text) - self._open_at


@dataclass(frozen=True)
class ModelAnswer:
    answer: str  # the text outside the thinking, what a caller parses
    thinking_chars: int  # how much thinking came with it (0 from a server that strips the thinking itself)
    unterminated: bool  # the thinking never ended (cut by the budget or by max tokens): ``answer`` is empty
    over_budget: bool  # the stream was cut here because the thinking outgrew ``max_thinking_chars``
    finish_reason: FinishReason | None


async def generate_answer(engine: Engine, request: GenerationRequest, max_thinking_chars: int) -> ModelAnswer:
    """Runs one sample of ``request`` and returns its answer without the thinking. The stream is closed as
    soon as an open thinking block outgrows ``max_thinking_chars`` (closing it stops the server generating),
    so a model that thinks without end costs a bounded amount of time."""
    meter, finish, over = ThinkingMeter(), None, False
    stream = engine.generate(request)
    try:
        async for chunk in stream:
            if chunk.index != 0:
                continue
            finish = chunk.finish_reason or finish
            if meter.feed(chunk.text) > max_thinking_chars:
                over = True
                break
    finally:
        await stream.aclose()
    split = split_thinking(meter.text)
    return ModelAnswer(split.answer, len(split.thinking), split.unterminated, over, finish)
