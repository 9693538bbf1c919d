"""FIM template detection from tokenizers built locally with each family's special tokens (nothing downloaded)."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from engine.api import BadRequest, FimParts, Message
from engine.formats import (
    FIM_TEMPLATES,
    control_tokens,
    detect_fim_template,
    has_chatml,
    render_chat,
)
from engine.special_tokens import SPECIAL_TOKENS

WORDS = ["def", "return", "x", "(", ")", ":", " "]

# Each family's special tokens as its published tokenizer carries them, in a realistic position
# (ours at ids 0..8; the others after the ordinary vocabulary).
FAMILIES: dict[str, dict] = {
    "mimo-code": dict(front=list(SPECIAL_TOKENS), back=[], eos="<|endoftext|>"),
    "qwen": dict(
        front=[],
        back=[
            "<|endoftext|>",
            "<|im_start|>",
            "<|im_end|>",
            "<|fim_prefix|>",
            "<|fim_middle|>",
            "<|fim_suffix|>",
            "<|fim_pad|>",
            "<|repo_name|>",
            "<|file_sep|>",
        ],
        eos="<|endoftext|>",
    ),
    "starcoder": dict(
        front=[
            "<|endoftext|>",
            "<fim_prefix>",
            "<fim_middle>",
            "<fim_suffix>",
            "<fim_pad>",
            "<filename>",
            "<gh_stars>",
            "<issue_start>",
        ],
        back=[],
        eos="<|endoftext|>",
    ),
    "deepseek-coder": dict(
        front=[],
        back=[
            "<｜begin▁of▁sentence｜>",
            "<｜end▁of▁sentence｜>",
            "<｜fim▁hole｜>",
            "<｜fim▁begin｜>",
            "<｜fim▁end｜>",
            "<|EOT|>",
        ],
        eos="<｜end▁of▁sentence｜>",
    ),
    "codellama": dict(front=["<unk>", "<s>", "</s>"], back=["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"], eos="</s>"),
    "codestral": dict(
        front=["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]"], back=[], eos="</s>"
    ),
}


def build_tokenizer(front: list[str], back: list[str], eos: str) -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate([*front, *WORDS, *back])}
    word_level = Tokenizer(models.WordLevel(vocab=vocab, unk_token=WORDS[2]))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = [t for t in [*front, *back] if t not in WORDS]
    return PreTrainedTokenizerFast(tokenizer_object=word_level, eos_token=eos, additional_special_tokens=specials)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_is_detected_from_its_special_tokens(family):
    tokenizer = build_tokenizer(**FAMILIES[family])
    assert detect_fim_template(tokenizer).name == family


def test_a_tokenizer_without_fim_tokens_has_no_template():
    tokenizer = build_tokenizer(front=["<|endoftext|>"], back=[], eos="<|endoftext|>")
    assert detect_fim_template(tokenizer) is None


def test_a_name_overrides_detection_and_an_unknown_name_is_a_clear_error():
    tokenizer = build_tokenizer(**FAMILIES["qwen"])
    assert detect_fim_template(tokenizer, override="mimo-code").name == "mimo-code"  # same tokens, SPM order
    with pytest.raises(BadRequest, match="unknown FIM template 'fim-o-matic'.*starcoder"):
        detect_fim_template(tokenizer, override="fim-o-matic")


def test_a_template_whose_tokens_the_tokenizer_lacks_is_refused_naming_them():
    """Accepted before, it rendered its tokens as plain text and every completion came back empty."""
    tokenizer = build_tokenizer(**FAMILIES["qwen"])
    with pytest.raises(
        BadRequest, match=r"'starcoder' does not fit.*<fim_prefix>, <fim_suffix>, <fim_middle>.*\(qwen\)"
    ):
        detect_fim_template(tokenizer, override="starcoder")


@pytest.mark.parametrize("family", FAMILIES)
def test_every_control_token_is_a_stop_token_with_its_vocabulary_id(family):
    tokenizer = build_tokenizer(**FAMILIES[family])
    stops = control_tokens(tokenizer, detect_fim_template(tokenizer))
    vocab = tokenizer.get_vocab()
    expected = {t for t in [*FAMILIES[family]["front"], *FAMILIES[family]["back"]]}
    assert set(stops) == expected
    assert all(vocab[token] == token_id for token, token_id in stops.items())


FIM = FimParts(prefix="def f(x):\n    return ", suffix="\n", header="# path: a.py\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mimo-code", "# path: a.py\n<|fim_prefix|><|fim_suffix|>\n<|fim_middle|>def f(x):\n    return "),
        ("qwen", "# path: a.py\n<|fim_prefix|>def f(x):\n    return <|fim_suffix|>\n<|fim_middle|>"),
        ("starcoder", "# path: a.py\n<fim_prefix>def f(x):\n    return <fim_suffix>\n<fim_middle>"),
        ("deepseek-coder", "# path: a.py\n<｜fim▁begin｜>def f(x):\n    return <｜fim▁hole｜>\n<｜fim▁end｜>"),
        ("codellama", "# path: a.py\n<PRE> def f(x):\n    return  <SUF>\n <MID>"),
        ("codestral", "# path: a.py\n[SUFFIX]\n[PREFIX]def f(x):\n    return "),
    ],
)
def test_templates_render_in_their_family_order(name, expected):
    assert FIM_TEMPLATES[name].render(FIM) == expected


def test_chatml_has_no_system_turn_unless_one_is_given():
    user = Message("user", "hi")
    assert render_chat([user]) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    with_system = render_chat([Message("system", "be brief"), user], add_generation_prompt=False)
    assert with_system == "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"


def test_chatml_support_is_read_from_the_vocabulary():
    assert has_chatml(build_tokenizer(**FAMILIES["qwen"]))
    assert not has_chatml(build_tokenizer(**FAMILIES["starcoder"]))
