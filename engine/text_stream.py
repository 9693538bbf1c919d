"""Token ids to streamed text: incremental detokenization with stop strings.

Text is released only when it is final: not ending in half a multi-byte character (the tokenizer shows those
as U+FFFD) and not possibly the start of a stop string.
"""

from __future__ import annotations

from collections.abc import Sequence


class TextStream:
    def __init__(self, tokenizer, stop: Sequence[str] = ()):
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.token_ids: list[int] = []
        self.text = ""
        self.released = 0  # characters of ``text`` already handed out
        self.stopped = False

    def add(self, token_ids: Sequence[int]) -> str:
        """Appends tokens; returns the newly final text. Sets ``stopped`` once a stop string appears."""
        self.token_ids.extend(token_ids)
        self.text = self.tokenizer.decode(self.token_ids, skip_special_tokens=False)
        cut = self._stop_position()
        if cut is not None:
            self.stopped = True
            return self._release(cut)
        end = len(self.text) - self._held_back()
        return self._release(end)

    def flush(self) -> str:
        """Everything not yet released (at the end of generation, when no stop string can complete)."""
        return self._release(len(self.text))

    def _release(self, end: int) -> str:
        if end <= self.released:
            return ""
        piece = self.text[self.released : end]
        self.released = end
        return piece

    def _stop_position(self) -> int | None:
        longest = max((len(s) for s in self.stop), default=0)
        start = max(0, self.released - longest)
        hits = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
        return min(hits) if hits else None

    def _held_back(self) -> int:
        """How many trailing characters might still change: an unfinished character or a stop string's start."""
        if self.text.endswith("\ufffd"):
            return len(self.text) - self.released
        for size in range(min(len(self.text), max((len(s) for s in self.stop), default=1) - 1), 0, -1):
            tail = self.text[-size:]
            if any(s.startswith(tail) for s in self.stop):
                return size
        return 0
