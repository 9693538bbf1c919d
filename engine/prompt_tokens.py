"""Prompt tokenization that no prompt can turn into a stall: off the event loop, and never more text than can fit.

Tokenizing megabytes takes seconds; on the server's event loop that would hold every other request and
/health. Each engine tokenizes in one thread of its own (one, because a fast tokenizer shared by threads can
fail with "Already borrowed"), and reads at most ``context_length × longest token`` characters: no token
spells more characters than the longest in the vocabulary, so a longer text whose head alone fills the
context is refused without reading the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from engine.api import EngineUnavailable, PromptTooLong
from engine.formats import prompt_token_ids

T = TypeVar("T")


class PromptTokenizer:
    def __init__(self, tokenizer, context_length: int):
        self.tokenizer = tokenizer
        self.context_length = context_length
        longest = max((len(token) for token in tokenizer.get_vocab()), default=1)
        self.max_chars = context_length * max(longest, 1)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mimo-tokenize")
        self.closed = False

    def ids(self, text: str) -> list[int]:
        """The prompt's token ids; ``PromptTooLong`` (or ``BadRequest`` for an empty one) if they can't fit."""
        if len(text) > self.max_chars:
            counted = len(self.tokenizer.encode(text[: self.max_chars]))
            if counted >= self.context_length:
                error = PromptTooLong(counted, self.context_length)
                error.args = (f"{error} (counting only its first {self.max_chars} of {len(text)} characters)",)
                raise error
        return prompt_token_ids(self.tokenizer, text, self.context_length)

    async def off_loop(self, work: Callable[..., T], *args) -> T:
        """Runs ``work`` (rendering and tokenizing a prompt) in the tokenizer's thread."""
        if self.closed:
            raise EngineUnavailable("the engine was closed and has stopped; open a new one")
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    def close(self) -> None:
        self.closed = True
        self._thread.shutdown(wait=False, cancel_futures=True)
