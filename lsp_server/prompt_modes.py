"""Completion prompts that fit the model: fill-in-the-middle, the prefix alone, or a chat request. Pure
functions over plain data; completion.py streams the request and cleans what comes back.

- ``fim``: the engine renders prefix and suffix with the model's FIM template. Only for models trained on it.
- ``prefix``: the header and the code before the cursor, continued as plain text. Any base model does this
  well; the suffix still guides the post-processing (suffix overlap, block end, the syntax check).
- ``chat``: an instruction model is shown the code with the gap marked and asked for one fenced block holding
  only the missing code. ``chat_answer`` checks that contract: the thinking of a reasoning model is dropped, a
  reply without a block or with the gap marker in it is no completion, and an echo of the line before the gap
  or of the code after it is cut. What is left goes through the same post-processing as every other
  candidate (syntax check, suffix overlap, repetition).

Which mode by default: engine.formats.default_prompt_mode (the deployment's choice, else by model family).
"""

from __future__ import annotations

import re
from dataclasses import replace

from engine.api import EngineInfo, FimParts, GenerationRequest, Message, SamplingParams
from engine.formats import PROMPT_MODES, default_prompt_mode
from lsp_server.reasoning import strip_thinking

AUTO = "auto"
GAP = "<FILL_HERE>"
# Room for the fences and a language tag around the code a chat model writes.
CHAT_OVERHEAD_TOKENS = 24
CHAT_SYSTEM = (
    "You complete code. The user shows a file with one gap marked " + GAP + ". Reply with exactly one fenced "
    "code block that holds only the code that replaces " + GAP + ": do not repeat the code before or after "
    "the gap, keep its indentation, and write nothing outside the block."
)
_FENCE = re.compile(r"^[ \t]*```[^\n`]*\n", re.M)
_CLOSING_FENCE = re.compile(r"^[ \t]*```[ \t]*$", re.M)


def completion_mode(setting: str, info: EngineInfo) -> str:
    """The mode to prompt in: the setting unless it is "auto", then the engine's default."""
    if setting in PROMPT_MODES:
        return setting
    return default_prompt_mode(info)


def build_request(
    mode: str, fim: FimParts, sampling: SamplingParams, language: str | None, multiline: bool, max_lines: int
) -> GenerationRequest:
    """The engine request for one completion in ``mode``."""
    if mode == "fim":
        return GenerationRequest(fim=fim, sampling=sampling)
    if mode == "prefix":
        return GenerationRequest(prompt=fim.header + fim.prefix, sampling=sampling)
    if mode != "chat":
        raise ValueError(f"unknown prompt mode {mode!r}; use one of: {', '.join(PROMPT_MODES)}")
    chat_sampling = replace(sampling, stop=(), max_tokens=sampling.max_tokens + CHAT_OVERHEAD_TOKENS)
    return GenerationRequest(messages=chat_messages(fim, language, multiline, max_lines), sampling=chat_sampling)


def chat_messages(fim: FimParts, language: str | None, multiline: bool, max_lines: int) -> tuple[Message, ...]:
    if multiline:
        task = f"The gap is an empty block body: write at most {max_lines} lines, indented like the code around it."
    else:
        task = "The gap is inside one line: write only the rest of that line, no line break."
    fence = "`" * max(3, _longest_backtick_run(fim.prefix + fim.suffix) + 1)  # code holding ``` stays inside
    user = f"{fim.header}{fence}{language or ''}\n{fim.prefix}{GAP}{fim.suffix}\n{fence}\n\n{task}"
    return Message("system", CHAT_SYSTEM), Message("user", user)


def chat_block_closed(text: str) -> bool:
    """True once a streamed chat reply has closed its first code block: nothing after it is used."""
    opening = _FENCE.search(strip_thinking(text))
    return opening is not None and _CLOSING_FENCE.search(strip_thinking(text), opening.end()) is not None


def chat_answer(reply: str, fim: FimParts) -> str | None:
    """The code a chat reply puts in the gap, or None when the reply breaks the contract (no code block, the
    gap marker echoed, or only thinking)."""
    answer = strip_thinking(reply)
    opening = _FENCE.search(answer)
    if opening is None:
        return None
    closing = _CLOSING_FENCE.search(answer, opening.end())
    code = answer[opening.end() : closing.start() if closing else len(answer)]
    code = code.removesuffix("\n")
    if GAP in code or not code.strip():
        return None
    line_before = fim.prefix[fim.prefix.rfind("\n") + 1 :]
    if line_before and code.startswith(line_before):
        code = code[len(line_before) :]  # the model rewrote the line from its start
    return _cut_suffix_echo(code, fim.suffix)


def _cut_suffix_echo(code: str, suffix: str) -> str:
    """Cuts the code where it starts repeating the lines after the gap (a model that wrote the rest of the
    function too): at the first line that equals the first non-blank line of the suffix after the cursor's
    own line. The post-processing's suffix-overlap filter handles the cursor's line."""
    after_cursor_line = suffix.split("\n", 1)[1] if "\n" in suffix else ""
    anchor = next((line.strip() for line in after_cursor_line.splitlines() if line.strip()), "")
    if len(anchor) < 2:
        return code  # a lone bracket is too common to mean an echo
    lines = code.split("\n")
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == anchor:
            return "\n".join(lines[:index]).rstrip()
    return code


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)
