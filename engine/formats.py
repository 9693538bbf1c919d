"""Prompt formats: fill-in-the-middle templates detected from a tokenizer's special tokens, and ChatML.

A misconfigured FIM template is the top complaint of local-completion users, so the template is read off the
tokenizer rather than configured: each family is recognised by control tokens only it has. A name given in
config overrides detection. Every control token the tokenizer has is a stop sequence: a model that emits one
has left the completion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from engine.api import BadRequest, EngineInfo, FimParts, GenerationRequest, Message, PromptTooLong
from engine.special_tokens import IM_END, IM_START, SPECIAL_TOKENS


@dataclass(frozen=True)
class FimTemplate:
    """How one model family spells a fill-in-the-middle prompt.

    ``order`` is "psm" (``P prefix S suffix M``), "spm" (``P S suffix M prefix``: the suffix first, so the
    middle continues straight from the prefix; StarCoder's and our data pipeline's SPM) or "suffix-prefix"
    (Codestral's ``[SUFFIX]…[PREFIX]…``, no middle token).
    ``prefix_token`` etc. are the strings written into the prompt; ``markers`` are the tokens that identify the
    family. SentencePiece vocabularies may store a token with a leading "▁" (CodeLlama's ``▁<PRE>``); both
    spellings count.
    """

    name: str
    prefix_token: str
    suffix_token: str
    middle_token: str
    markers: tuple[str, ...]
    control_tokens: tuple[str, ...]
    order: Literal["psm", "spm", "suffix-prefix"] = "psm"
    # CodeLlama's format puts a space after <PRE> and before <SUF>/<MID> (its tokenizer was trained that way).
    padded: bool = False

    def sentinel_tokens(self) -> tuple[str, str, str]:
        """The prefix, suffix and middle tokens: none of them can occur inside a middle."""
        return self.prefix_token, self.suffix_token, self.middle_token

    def render(self, fim: FimParts) -> str:
        """The prompt text for ``fim``; the header (file path, cross-file snippets) comes before the FIM block."""
        if self.order == "spm":
            return f"{fim.header}{self.prefix_token}{self.suffix_token}{fim.suffix}{self.middle_token}{fim.prefix}"
        if self.order == "suffix-prefix":
            return f"{fim.header}{self.suffix_token}{fim.suffix}{self.prefix_token}{fim.prefix}"
        if self.padded:
            return f"{fim.header}{self.prefix_token} {fim.prefix} {self.suffix_token}{fim.suffix} {self.middle_token}"
        return f"{fim.header}{self.prefix_token}{fim.prefix}{self.suffix_token}{fim.suffix}{self.middle_token}"


_QWEN_TOKENS = ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")

# Detection tries these in order; the first whose markers are all in the vocabulary wins. "mimo-code" (our own
# tokenizer: the special tokens at ids 0..8) is told apart from the Qwen2 family, which spells them the same.
# Our models are prompted in SPM order: they see both orders in training, but a PSM example longer than the
# training window loses its prefix from view before the middle starts, while in SPM the middle always follows
# the prefix directly. On mimo-nano's held-out lines SPM gave edit similarity 0.37 against PSM's 0.12.
FIM_TEMPLATES: dict[str, FimTemplate] = {
    t.name: t
    for t in (
        FimTemplate("mimo-code", *_QWEN_TOKENS, markers=SPECIAL_TOKENS, control_tokens=SPECIAL_TOKENS, order="spm"),
        FimTemplate(
            "qwen",
            *_QWEN_TOKENS,
            markers=_QWEN_TOKENS,
            control_tokens=(*SPECIAL_TOKENS, "<|im_start|>", "<|im_end|>", "<|endoftext|>"),
        ),
        FimTemplate(
            "starcoder",
            "<fim_prefix>",
            "<fim_suffix>",
            "<fim_middle>",
            markers=("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
            control_tokens=(
                "<|endoftext|>",
                "<fim_prefix>",
                "<fim_suffix>",
                "<fim_middle>",
                "<fim_pad>",
                "<filename>",
                "<file_sep>",
                "<repo_name>",
                "<gh_stars>",
            ),
        ),
        FimTemplate(
            "deepseek-coder",
            "<｜fim▁begin｜>",
            "<｜fim▁hole｜>",
            "<｜fim▁end｜>",
            markers=("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
            control_tokens=(
                "<｜fim▁begin｜>",
                "<｜fim▁hole｜>",
                "<｜fim▁end｜>",
                "<｜end▁of▁sentence｜>",
                "<|EOT|>",
            ),
        ),
        FimTemplate(
            "codellama",
            "<PRE>",
            "<SUF>",
            "<MID>",
            markers=("<PRE>", "<SUF>", "<MID>"),
            control_tokens=("<PRE>", "<SUF>", "<MID>", "<EOT>"),
            padded=True,
        ),
        FimTemplate(
            "codestral",
            "[PREFIX]",
            "[SUFFIX]",
            "[MIDDLE]",
            markers=("[PREFIX]", "[SUFFIX]"),
            control_tokens=("[PREFIX]", "[SUFFIX]", "[MIDDLE]", "</s>"),
            order="suffix-prefix",
        ),
    )
}


# How a completion is asked of the model. "fim": fill-in-the-middle with the model's template, for models trained
# on it; "prefix": the code before the cursor alone, continued (any base model); "chat": an instruction model
# is asked for the missing code in a fenced block (lsp_server.prompt_modes checks what comes back).
PROMPT_MODES = ("fim", "prefix", "chat")
# Families whose FIM training is documented: ours (the data pipeline trains FIM in SPM and PSM order),
# StarCoder, DeepSeek-Coder, CodeLlama and Codestral. Every Qwen2-family tokenizer carries the FIM tokens,
# whatever the model: MiMo-7B's does, and its technical report never says it was trained on fill-in-the-middle,
# so "qwen" means FIM only for a model named a coder (Qwen2.5-Coder documents FIM training).
FIM_TRAINED_TEMPLATES = frozenset({"mimo-code", "starcoder", "deepseek-coder", "codellama", "codestral"})


def default_prompt_mode(info: EngineInfo) -> str:
    """The deployment's prompt mode when it set one (``info.prompt_mode``), else the model family's honest
    default: "fim" for families trained on it, "prefix" for everything else."""
    if info.prompt_mode in PROMPT_MODES:
        return info.prompt_mode
    if info.fim_template in FIM_TRAINED_TEMPLATES:
        return "fim"
    if info.fim_template == "qwen" and "coder" in info.model.lower():
        return "fim"
    return "prefix"


class TokenizerLike(Protocol):
    """What detection needs from a Hugging Face tokenizer."""

    all_special_tokens: list[str]

    def get_vocab(self) -> dict[str, int]: ...


def detect_fim_template(tokenizer: TokenizerLike, override: str | None = None) -> FimTemplate | None:
    """The tokenizer's FIM template (``override`` names one instead); None when it has no FIM tokens."""
    if override:
        return checked_fim_template(tokenizer, override)
    vocab = tokenizer.get_vocab()
    if _is_mimo_code_tokenizer(vocab):
        return FIM_TEMPLATES["mimo-code"]
    for template in FIM_TEMPLATES.values():
        if template.name != "mimo-code" and all(_spelling(marker, vocab) for marker in template.markers):
            return template
    return None


def checked_fim_template(tokenizer: TokenizerLike, name: str) -> FimTemplate:
    """The template ``name``, if the tokenizer has each of its prefix, suffix and middle tokens as one token;
    else a BadRequest naming the missing ones and the template detected (a template the model lacks would
    render its tokens as plain text, and every completion would come back empty or wrong)."""
    template = fim_template_named(name)
    vocab = tokenizer.get_vocab()
    missing = [token for token in template.sentinel_tokens() if _spelling(token, vocab) is None]
    if missing:
        detected = detect_fim_template(tokenizer)
        raise BadRequest(
            f"FIM template {name!r} does not fit this model: its tokenizer has no {', '.join(missing)} token; "
            f"leave the template unset to use the one detected ({detected.name if detected else 'none: no FIM tokens'})"
        )
    return template


def fim_template_named(name: str) -> FimTemplate:
    try:
        return FIM_TEMPLATES[name]
    except KeyError:
        known = ", ".join(FIM_TEMPLATES)
        raise BadRequest(f"unknown FIM template {name!r}; use one of: {known}") from None


def _is_mimo_code_tokenizer(vocab: dict[str, int]) -> bool:
    return all(vocab.get(token) == token_id for token_id, token in enumerate(SPECIAL_TOKENS))


def control_tokens(tokenizer: TokenizerLike, template: FimTemplate | None) -> dict[str, int]:
    """Every control token the tokenizer has (its special tokens and the FIM family's), by vocabulary id.

    All of them are stop sequences: a missed one leaks ``<fim_pad>`` or ``<|file_sep|>`` into the editor, while
    an extra one can only end a completion that had already left the code.
    """
    vocab = tokenizer.get_vocab()
    family = template.control_tokens if template else ()
    found: dict[str, int] = {}
    for token in (*tokenizer.all_special_tokens, *family):
        spelled = _spelling(token, vocab)
        if spelled is not None:
            found[spelled] = vocab[spelled]
    return found


def fim_sentinel_ids(tokenizer: TokenizerLike, template: FimTemplate | None) -> tuple[int, ...]:
    """The ids of the template's prefix / suffix / middle tokens: none of them can occur inside a middle, so FIM
    requests never sample them. A model trained on whole-file PSM puts real mass on "suffix starts here" after
    any code (mimo-nano: 0.4 at the start of a function body), which as a stop token would end the completion
    before it began."""
    if template is None:
        return ()
    vocab = tokenizer.get_vocab()
    spellings = (_spelling(token, vocab) for token in template.sentinel_tokens())
    return tuple(vocab[spelled] for spelled in spellings if spelled is not None)


def _spelling(token: str, vocab: dict[str, int]) -> str | None:
    """How ``vocab`` spells ``token``: as is, or with SentencePiece's word-start "▁"."""
    for spelled in (token, "▁" + token):
        if spelled in vocab:
            return spelled
    return None


def render_chat(messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """ChatML with MiMo's recommended empty default system prompt: no system turn unless a message gives one."""
    turns = [f"{IM_START}{m.role}\n{m.content}{IM_END}\n" for m in messages]
    if add_generation_prompt:
        turns.append(f"{IM_START}assistant\n")
    return "".join(turns)


def has_chatml(tokenizer: TokenizerLike) -> bool:
    vocab = tokenizer.get_vocab()
    return IM_START in vocab and IM_END in vocab


def render_request(request: GenerationRequest, tokenizer, fim: FimTemplate | None, model_name: str) -> str:
    """The prompt text a backend feeds its model: raw, FIM with the model's template, or chat (ChatML when the
    tokenizer has its tokens, else the tokenizer's own chat template)."""
    if request.prompt is not None:
        return request.prompt
    if request.fim is not None:
        if fim is None:
            raise BadRequest(f"model {model_name} has no fill-in-the-middle tokens; send a plain prompt")
        return fim.render(request.fim)
    messages = request.messages or ()
    if has_chatml(tokenizer):
        return render_chat(messages)
    if getattr(tokenizer, "chat_template", None):
        turns = [{"role": m.role, "content": m.content} for m in messages]
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    raise BadRequest(f"model {model_name} has no chat template; send a plain prompt")


def prompt_token_ids(tokenizer, text: str, context_length: int) -> list[int]:
    """Tokenises a rendered prompt (with the tokenizer's own BOS, if it has one) and checks it fits."""
    ids = tokenizer.encode(text)
    if not ids:
        raise BadRequest("the prompt is empty")
    if len(ids) >= context_length:
        raise PromptTooLong(len(ids), context_length)
    return ids
