"""Token ids to streamed text: incremental detokenization with stop strings.

Text is released only when it is final: not ending in half a multi-byte character (the tokenizer shows those
as U+FFFD) and not possibly the start of a stop string.

Each step decodes only the newest tokens, with the few before them as context (the prefix/read offsets of
vLLM's and TGI's detokenizers): decoding the whole completion every step grew with its length, 18 µs a step at
128 tokens and 37 µs at 512 here. The context tokens keep tokenizers that drop a leading space at the start of
a decode (SentencePiece) from changing the text: both decodes start at the same token, and only the difference
is new.
"""

from __future__ import annotations

from collections.abc import Sequence


class TextStream:
    def __init__(self, tokenizer, stop: Sequence[str] = ()):
        self.tokenizer = tokenizer
        self.stop = tuple(s for s in stop if s)
        self.token_ids: list[int] = []
        self.text = ""  # the text of token_ids[:read_offset]
        self.unfinished = ""  # the text after it, up to a character still missing bytes (stop strings see it)
        self.prefix_offset = 0  # tokens decoded again as context for the next ones
        self.read_offset = 0  # tokens whose text is in ``text``
        self.released = 0  # characters of ``text`` already handed out
        self.stopped = False

    def add(self, token_ids: Sequence[int]) -> str:
        """Appends tokens; returns the newly final text. Sets ``stopped`` once a stop string appears."""
        self.token_ids.extend(token_ids)
        self._read(final=False)
        cut = self._stop_position(self.text + self.unfinished if self.unfinished else self.text)
        if cut is not None:
            self.text += self.unfinished
            self.stopped = True
            return self._release(cut)
        end = len(self.text) - self._held_back()
        return self._release(end)

    def flush(self) -> str:
        """Everything not yet released (at the end of generation, when no stop string can complete)."""
        self._read(final=True)
        return self._release(len(self.text))

    def _read(self, final: bool) -> None:
        """Appends the text of the tokens after ``read_offset``, unless it ends in half a character (then it
        waits for the rest, or takes it as it is when ``final``)."""
        if self.read_offset == len(self.token_ids):
            return
        decode = self.tokenizer.decode
        context = decode(self.token_ids[self.prefix_offset : self.read_offset], skip_special_tokens=False)
        extended = decode(self.token_ids[self.prefix_offset :], skip_special_tokens=False)
        if extended.endswith("\ufffd") and not final:
            self.unfinished = extended[len(context) :].rstrip("\ufffd")
            return
        self.unfinished = ""
        self.text += extended[len(context) :]
        self.prefix_offset, self.read_offset = self.read_offset, len(self.token_ids)

    def _release(self, end: int) -> str:
        if end <= self.released:
            return ""
        piece = self.text[self.released : end]
        self.released = end
        return piece

    def _stop_position(self, text: str) -> int | None:
        longest = max((len(s) for s in self.stop), default=0)
        start = max(0, self.released - longest)
        hits = [i for i in (text.find(s, start) for s in self.stop) if i >= 0]
        return min(hits) if hits else None

    def _held_back(self) -> int:
        """How many trailing characters might still be a stop string's start (unfinished characters never
        reach ``text`` before ``flush``)."""
        for size in range(min(len(self.text), max((len(s) for s in self.stop), default=1) - 1), 0, -1):
            tail = self.text[-size:]
            if any(s.startswith(tail) for s in self.stop):
                return size
        return 0
