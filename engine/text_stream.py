"""Token ids to streamed text: incremental detokenization with stop strings.

Text is released only when it is final: not ending in half a multi-byte character (the tokenizer shows those
as U+FFFD) and not possibly the start of a stop string. Stop strings are found in time linear in the text
(``StopMatcher``), however many there are and however long.

Each step decodes only the newest tokens, with the few before them as context (the prefix/read offsets of
vLLM's and TGI's detokenizers): decoding the whole completion every step grew with its length, 18 µs a step at
128 tokens and 37 µs at 512 here. The context tokens keep tokenizers that drop a leading space at the start of
a decode (SentencePiece) from changing the text: both decodes start at the same token, and only the difference
is new.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Reads text piece by piece and says where the first stop string it completes starts.

    One Knuth-Morris-Pratt automaton per stop string: its state is the length of the longest beginning of that
    stop string the text read so far ends with, so each character costs O(1) amortised per stop string, and the
    largest state is exactly how much text must be held back. Searching the new text with ``str.find`` would
    still need that held-back length, which took O(length²) per step for long stop strings; hence these few
    lines rather than a library (regex and Aho-Corasick packages give matches, not the partial state).
    Among stop strings completed by the same character, the one that starts first wins.
    """

    def __init__(self, stops: Sequence[str]):
        self.stops = tuple(s for s in stops if s)
        self._fallback = [_prefix_function(s) for s in self.stops]
        self.states = [0] * len(self.stops)
        self.position = 0  # characters read so far

    def feed(self, text: str) -> int | None:
        """Reads ``text``; the start (counted in all text read) of the first stop string it completes, or None."""
        states, stops, fallbacks = self.states, self.stops, self._fallback
        for offset, char in enumerate(text):
            found = None
            for i, stop in enumerate(stops):
                state = states[i]
                while state and stop[state] != char:
                    state = fallbacks[i][state - 1]
                if stop[state] == char:
                    state += 1
                if state == len(stop):
                    start = self.position + offset + 1 - state
                    found = start if found is None else min(found, start)
                    state = fallbacks[i][state - 1]
                states[i] = state
            if found is not None:
                self.position += offset + 1
                return found
        self.position += len(text)
        return None

    def held_back(self) -> int:
        """How many trailing characters of the text read may begin a stop string."""
        return max(self.states, default=0)

    def copy(self) -> StopMatcher:
        twin = StopMatcher(())
        twin.stops, twin._fallback = self.stops, self._fallback
        twin.states, twin.position = list(self.states), self.position
        return twin


def _prefix_function(pattern: str) -> list[int]:
    """KMP's table: [i] is the length of the longest proper prefix of pattern[: i + 1] that is also its suffix."""
    table = [0] * len(pattern)
    length = 0
    for i in range(1, len(pattern)):
        while length and pattern[i] != pattern[length]:
            length = table[length - 1]
        if pattern[i] == pattern[length]:
            length += 1
        table[i] = length
    return table


class TextStream:
    def __init__(self, tokenizer, stop: Sequence[str] = ()):
        self.tokenizer = tokenizer
        self.stops = StopMatcher(stop)
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
        if not self.stops.stops:
            return self._release(len(self.text))
        cut = self.stops.feed(self.text[self.stops.position :])
        if cut is None and self.unfinished:  # seen by stop strings, read again once its last character is whole
            cut = self.stops.copy().feed(self.unfinished)
        if cut is not None:
            self.text += self.unfinished
            self.stopped = True
            return self._release(cut)
        return self._release(len(self.text) - self.stops.held_back())

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
