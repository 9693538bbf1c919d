"""The special tokens of mimo-code's own tokenizer (the names follow Qwen2.5-Coder's, so tools that know
Qwen's FIM format recognise ours).

Training adds them to the tokenizer it trains; the engine detects the FIM template from them.
"""

END_OF_TEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
FIM_PAD = "<|fim_pad|>"
REPO_NAME = "<|repo_name|>"
FILE_SEP = "<|file_sep|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"

# Order fixes their ids (0..8) in every tokenizer we train.
SPECIAL_TOKENS: tuple[str, ...] = (
    END_OF_TEXT,
    FIM_PREFIX,
    FIM_MIDDLE,
    FIM_SUFFIX,
    FIM_PAD,
    REPO_NAME,
    FILE_SEP,
    IM_START,
    IM_END,
)

# ChatML with MiMo's recommended empty default system prompt: no system turn unless the caller gives one.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
