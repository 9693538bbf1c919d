"""`mimo train tokenizer`: a byte-level BPE (the `tokenizers` library) with mimo-code's special tokens.

The nine special tokens of engine/special_tokens.py are added first, in that order, so their ids are 0..8 in
every tokenizer we train. The result is saved in Hugging Face format (tokenizer.json + tokenizer_config.json with
the ChatML template) so `AutoTokenizer.from_pretrained(DIR)` loads it. The data pipeline reads the same
tokenizer.json through `TokenCodec`, which never turns special-token text found inside code into special ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.special_tokens import CHAT_TEMPLATE, END_OF_TEXT, SPECIAL_TOKENS
from training.errors import UserError

MIN_VOCAB = 512


@dataclass
class TrainingText:
    """Texts to train on, read lazily; `skipped` counts files left out by reason (non-utf8, binary...)."""

    files: list[Path] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    bytes_read: int = 0
    files_read: int = 0

    def texts(self, max_bytes: int | None = None) -> Iterator[str]:
        for path in self.files:
            if max_bytes is not None and self.bytes_read >= max_bytes:
                self.skipped["over-budget"] += 1
                continue
            data = path.read_bytes()
            if b"\0" in data[:8192]:
                self.skipped["binary"] += 1
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                self.skipped["non-utf8"] += 1
                continue
            self.bytes_read += len(data)
            self.files_read += 1
            yield text


def train_bpe(texts: Iterable[str], vocab_size: int, show_progress: bool = False):
    """A byte-level BPE `tokenizers.Tokenizer` whose first ids are SPECIAL_TOKENS in order."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < MIN_VOCAB:
        raise UserError(f"--vocab-size {vocab_size} is too small: use at least {MIN_VOCAB} (256 bytes + specials)")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    return bpe


def save_hf(bpe, out_dir: Path) -> Path:
    """Writes the tokenizer in Hugging Face format, with <|endoftext|> as eos/pad and the ChatML template."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        additional_special_tokens=[token for token in SPECIAL_TOKENS if token != END_OF_TEXT],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


class TokenCodec:
    """Encoding for the data pipeline: text is always text (a literal "<|endoftext|>" in code is encoded as
    characters), special tokens are inserted by id."""

    def __init__(self, tokenizer_dir: Path):
        from tokenizers import Tokenizer

        path = Path(tokenizer_dir) / "tokenizer.json"
        if not path.is_file():
            raise UserError(f"{tokenizer_dir} has no tokenizer.json; train one with `mimo train tokenizer`")
        self._tokenizer = Tokenizer.from_file(str(path))
        self._tokenizer.encode_special_tokens = True
        self.special_ids = {token: self._tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
        missing = [token for token, index in self.special_ids.items() if index is None]
        if missing:
            lacking = ", ".join(missing)
            raise UserError(f"{tokenizer_dir}: tokenizer lacks {lacking}; train one with `mimo train tokenizer`")
        self.vocab_size = self._tokenizer.get_vocab_size()

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=False)
