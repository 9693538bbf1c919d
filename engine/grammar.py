"""Structured output on the native backend: a request's ``response_format`` (a JSON schema, or any JSON object)
enforced by grammar-constrained decoding with llguidance.

llguidance rather than xgrammar (both ship with vLLM as its structured-output backends): 35 schemas of common
keywords, each decoded 40 times from random logits (docs/serving.md), gave values that failed validation for 13
under xgrammar 0.2.8, which accepted ``not``, ``if``/``then``, ``uniqueItems``, ``contains``,
``dependentRequired`` and others and ignored them, and let raw control characters into strings with a
``maxLength``; llguidance 1.7.6 refused the 9 it does not implement by name, and every value it let through
validated. A schema is enforced or refused, never accepted and ignored. Its matcher rolls back, which
speculative decoding needs. Cost on nano's 8,192-token vocabulary: a mask ~15 µs, mask + apply + advance
50-75 µs a token, 8-11 % of nano's CPU decode rate (docs/benchmarks.md); a copied matcher per sample, a
compiled grammar per schema (cached).

Where the mask sits among the logit processors of a step (``native_decode``): the model's logits, then the
request's logit bias, presence and frequency penalties and banned ids (``sampling.LogitShaper``), then the
grammar's mask (every token the grammar does not allow next is -inf), then temperature and top-p, then argmax
or sampling. A bias can thus never revive a token the grammar forbids, and temperature and top-p renormalise
over the allowed tokens only.

MTP: each draft is chosen under the mask of the state after the drafts before it (the matcher consumes drafts
tentatively), and row r of the verification is masked with the state after the first r drafts, exactly the
mask plain decoding would apply there. The matcher then rolls back the rejected drafts and consumes the
correction, so greedy MTP output stays token for token that of plain decoding, and sampled output keeps the
target distribution.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable

import torch

from engine.api import BadRequest, EngineError

# Values are written on one line, with ", " and ": " between items: with free whitespace between tokens (which
# llguidance cannot bound: a bounded pattern still repeats) greedy nano wrote a newline after a value until
# max_tokens ran out, and vLLM grew a flag against such loops. OpenAI's structured outputs are compact JSON too.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
# Schemas past these are refused before compiling: a schema is a program the grammar compiler runs, and the
# request body may hold megabytes (a 20,000-value enum took xgrammar 5 s). OpenAI's own limits are lower.
MAX_SCHEMA_CHARS = 64 * 1024
MAX_SCHEMA_DEPTH = 64


class SchemaRejected(BadRequest):
    """A ``response_format`` the grammar engine cannot enforce; the server's 400 names the field."""

    param = "response_format"


class JsonGrammars:
    """An engine's grammar maker, reading the vocabulary on first use.

    ``stop_ids`` are the tokens that end a sample: once the JSON value is complete the grammar allows only
    them, and none before, so a sample that ends with ``finish_reason`` "stop" holds a complete, valid value.
    """

    def __init__(self, tokenizer, vocab_size: int, stop_ids: Iterable[int]):
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.stop_ids = sorted(stop_ids)
        self._vocabulary = None
        self._lock = threading.Lock()
        # Callers repeat their schema (mimo review, RL rollouts), and a Grammar is never changed once made.
        self._compiled = functools.lru_cache(maxsize=64)(self._compile_text)

    def compile(self, schema: dict) -> Grammar:
        """The grammar of ``schema``, checked (a ``SchemaRejected`` naming what is wrong with it). Run it off the
        event loop: the first call reads the vocabulary, and a large schema takes tens of milliseconds."""
        return self._compiled(_schema_text(schema))

    def _compile_text(self, text: str) -> Grammar:
        import llguidance

        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(text, defaults=JSON_LAYOUT)
        except ValueError as bad:
            raise SchemaRejected(f"response_format: the JSON schema is not a JSON object ({bad})") from None
        vocabulary = self._vocabulary_once()
        failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, vocabulary)
        if failed:
            raise SchemaRejected(f"response_format: the JSON schema cannot be enforced: {_one_line(messages[0])}")
        start = llguidance.LLMatcher(vocabulary, grammar, log_level=0)
        compiled = Grammar(start, self.vocab_size, frozenset(self.stop_ids))
        first = GrammarState(compiled, 1)
        try:
            first.fill(0)
        except SchemaRejected:  # e.g. {"$ref": "#"}: nothing but itself, which llguidance finds at its first mask
            raise SchemaRejected("response_format: no JSON value satisfies the schema") from None
        if first.matcher.is_accepting():
            raise SchemaRejected("response_format: the schema admits an empty answer, which is not JSON")
        return compiled

    def _vocabulary_once(self):
        import llguidance.hf

        with self._lock:
            if self._vocabulary is None:
                self._vocabulary = llguidance.hf.from_tokenizer(
                    self.tokenizer, n_vocab=self.vocab_size, eos_token=self.stop_ids
                )
            return self._vocabulary


class Grammar:
    """A checked grammar: a matcher at its start, never advanced, which each sample copies (a copy takes
    microseconds where building a matcher takes up to tens of milliseconds, so jobs can be made on the event
    loop)."""

    def __init__(self, start, vocab_size: int, stop_ids: frozenset[int]):
        self.start = start
        self.vocab_size = vocab_size
        self.stop_ids = stop_ids


class GrammarState:
    """One sample's place in a grammar, with a bitmask row for each position of a step.

    Plain step: ``fill(0)``, ``apply(logits)``, choose, ``advance(token)``. MTP step: per draft j, ``fill(j)``,
    ``apply(draft_logits, j)``, choose, ``speculate(draft)``; then ``fill(len(drafts))``, ``apply`` to the
    verification rows, and ``settle(accepted, next_token)``.

    Stop tokens are never fed to the matcher: the mask allows them only where the value is complete, and the
    sample ends with them. (llguidance does not record a stop token it takes after a complete value in the
    history ``rollback`` undoes, so a rejected stop draft could not be rolled back.)
    """

    def __init__(self, grammar: Grammar, rows: int):
        self.matcher = grammar.start.deep_copy()
        self.vocab_size = grammar.vocab_size
        self.stop_ids = grammar.stop_ids
        self.ended = False  # a stop token was chosen (the sample is over, or a draft ended it)
        # llguidance's layout (xgrammar's too): token t is bit t % 32 of int32 word t // 32.
        self.bitmask = torch.zeros((rows, (grammar.vocab_size + 31) // 32), dtype=torch.int32)
        self.speculated = 0  # drafts consumed tentatively, undone or kept by ``settle``
        self.stop_drafted = False  # the draft after those was a stop token
        self._bits: dict[torch.device, torch.Tensor] = {}

    def fill(self, row: int = 0) -> None:
        """Writes the tokens allowed next into bitmask ``row`` (after a stop token: those allowed before it;
        whatever follows a stop token is discarded, but a row must leave something to choose)."""
        # What llguidance.torch.fill_next_token_bitmask does, without importing that module: it defines a
        # torch.compile kernel at import, which loads torch's compiler stack (3 s here) for nothing.
        words = self.bitmask[row]
        self.matcher.unsafe_compute_mask_ptr(words.data_ptr(), words.numel() * words.element_size())
        if self.matcher.is_error():  # e.g. a step past llguidance's limits (ParserTooComplex)
            reason = _one_line(self.matcher.get_error().split("<state>")[0])
            raise SchemaRejected(f"response_format: the grammar engine gave up on this schema: {reason}")

    def apply(self, logits: torch.Tensor, first_row: int = 0) -> torch.Tensor:
        """``logits`` ((width,) or (rows, width), width up to the vocabulary: MTP drafts see the first ids only)
        in float32, with -inf wherever bitmask rows ``first_row``... forbid the token.

        A few torch lines rather than a library's kernel: llguidance's own is a ``torch.compile`` function (a C
        compiler and seconds of compiling at the first request on a CPU), and this runs on any device."""
        rows = logits[None] if logits.dim() == 1 else logits
        words = self.bitmask[first_row : first_row + rows.shape[0]].to(rows.device, non_blocking=True)
        allowed = (words[..., None] >> self._shifts(rows.device)) & 1  # (rows, words, 32)
        allowed = allowed.flatten(1)[:, : rows.shape[-1]].bool()
        masked = rows.float().masked_fill(~allowed, float("-inf"))
        return masked[0] if logits.dim() == 1 else masked

    def advance(self, token: int) -> None:
        """Takes a chosen token (one the mask allowed)."""
        if token in self.stop_ids:
            if not self.matcher.is_accepting():
                raise EngineError(f"stop token {token} chosen before the response_format value was complete")
            self.ended = True
        elif not self.matcher.consume_token(token):
            raise EngineError(f"the response_format grammar refused token {token}: {self.matcher.get_error()}")

    def speculate(self, token: int) -> None:
        """Takes a draft tentatively (no drafting follows a stop token)."""
        self.advance(token)
        if self.ended:
            self.stop_drafted = True
        else:
            self.speculated += 1

    def settle(self, accepted: int, next_token: int) -> None:
        """Keeps the first ``accepted`` drafts, rolls back the rest, then takes the verification's token."""
        kept = min(accepted, self.speculated)
        if self.speculated > kept and not self.matcher.rollback(self.speculated - kept):
            raise EngineError(f"the response_format grammar could not roll back: {self.matcher.get_error()}")
        self.ended = self.stop_drafted and accepted > self.speculated  # the stop draft was accepted
        self.speculated, self.stop_drafted = 0, False
        if not self.ended:  # after an accepted stop draft, the token is discarded with the rest
            self.advance(next_token)

    def _shifts(self, device: torch.device) -> torch.Tensor:
        if device not in self._bits:
            self._bits[device] = torch.arange(32, dtype=torch.int32, device=device)
        return self._bits[device]


def _schema_text(schema: dict) -> str:
    """The schema as JSON text, refused when it is too large or too deeply nested to compile safely."""
    if not isinstance(schema, dict):
        raise SchemaRejected(f"response_format: the JSON schema must be an object, got {type(schema).__name__}")
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        raise SchemaRejected(f"response_format: the JSON schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
    try:
        text = json.dumps(schema, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as bad:
        raise SchemaRejected(f"response_format: the JSON schema is not JSON ({bad})") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as bad:  # a lone surrogate ("\ud800"): llguidance reads UTF-8 only
        where = ascii(text[max(bad.start - 20, 0) : bad.end + 20])
        raise SchemaRejected(
            f"response_format: the JSON schema holds a lone surrogate, not Unicode text: {where}"
        ) from None
    if len(text) > MAX_SCHEMA_CHARS:
        raise SchemaRejected(
            f"response_format: the JSON schema has {len(text)} characters; at most {MAX_SCHEMA_CHARS} are enforced"
        )
    return text


def _depth(value) -> int:
    """How deeply lists and objects nest in ``value``, counted without recursion (a hostile schema may nest
    deeper than Python's stack)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > MAX_SCHEMA_DEPTH:
                    return depth + 1
                pending.append((child, depth + 1))
        deepest = max(deepest, depth)
    return deepest


def _one_line(message: str, most: int = 300) -> str:
    text = " ".join(message.split()) or "llguidance gave no reason"
    return text if len(text) <= most else text[: most - 1] + "…"
