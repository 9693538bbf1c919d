"""`mimo train tokenizer`: special tokens with fixed ids, Hugging Face format, non-UTF-8 files skipped."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.special_tokens import SPECIAL_TOKENS
from mimo.cli import app
from training.tokenizer import TokenCodec


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in ("textwrap.py", "shlex.py", "glob.py"):
        (corpus / name).write_text((stdlib / name).read_text(encoding="utf-8"), encoding="utf-8")
    (corpus / "latin1.py").write_bytes("s = 'caf\u00e9'\n".encode("latin-1"))
    out = tmp_path_factory.mktemp("tok")
    result = CliRunner().invoke(app, ["train", "tokenizer", str(corpus), "--out", str(out), "--vocab-size", "600"])
    return out, result


def test_cli_reports_the_skipped_file(trained):
    _, result = trained
    assert result.exit_code == 0, result.output
    assert "non-utf8 1" in result.stderr and "3 files" in result.stderr


@pytest.mark.slow  # imports transformers (AutoTokenizer)
def test_special_tokens_have_ids_zero_to_eight(trained):
    from transformers import AutoTokenizer

    out, _ = trained
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert [tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS] == list(range(9))
    assert len(tokenizer) == 600
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.pad_token == "<|endoftext|>"
    ids = tokenizer("<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>")["input_ids"]
    assert ids[0] == 1 and 3 in ids and ids[-1] == 2


@pytest.mark.slow  # imports transformers (AutoTokenizer)
def test_chat_template_renders_chatml(trained):
    from transformers import AutoTokenizer

    out, _ = trained
    text = AutoTokenizer.from_pretrained(out).apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_codec_keeps_special_text_in_code_as_text(trained):
    out, _ = trained
    codec = TokenCodec(out)
    (ids,) = codec.encode_batch(["marker = '<|endoftext|>'"])
    assert 0 not in ids and codec.decode(ids) == "marker = '<|endoftext|>'"
    assert [codec.special_ids[token] for token in SPECIAL_TOKENS] == list(range(9))


@pytest.mark.slow  # imports transformers (AutoTokenizer)
def test_round_trip_of_code(trained):
    from transformers import AutoTokenizer

    out, _ = trained
    tokenizer = AutoTokenizer.from_pretrained(out)
    code = "def héllo(x):\n\treturn x ** 2  # ünïcode ✓\n"
    assert tokenizer.decode(tokenizer(code)["input_ids"]) == code


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--vocab-size", "100"], "too small"),
        ([], "empty corpus"),
    ],
)
def test_bad_input(tmp_path, args, fragment):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "only.bin").write_bytes(b"\0")
    if args:
        (tmp_path / "src" / "a.py").write_text("x = 1\n")
    result = CliRunner().invoke(app, ["train", "tokenizer", str(tmp_path / "src"), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith("error: ") and fragment in result.stderr


def test_missing_source_directory(tmp_path):
    result = CliRunner().invoke(app, ["train", "tokenizer", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "is not a directory" in result.stderr


def test_codec_rejects_a_tokenizer_without_our_specials(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from training.errors import UserError

    foreign = Tokenizer(models.BPE())
    foreign.pre_tokenizer = pre_tokenizers.ByteLevel()
    foreign.train_from_iterator(["x = 1\n"] * 10, trainers.BpeTrainer(vocab_size=300, show_progress=False))
    foreign.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(UserError, match=r"lacks <\|endoftext\|>"):
        TokenCodec(tmp_path)
