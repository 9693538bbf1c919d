"""The OpenAI-compatible wire format: pydantic request and response models, and their conversion to engine.api.

Every sampling parameter declared here is applied by both backends. Fields we don't know are ignored (as
OpenAI-compatible servers do), so clients written for OpenAI or vLLM work unchanged, except for the sampling
and output parameters of OpenAI's and vLLM's APIs that we don't implement (``UNSUPPORTED``): asking for one of
those is a 400 naming it, never a request quietly answered without it. Values outside their range, text that
is not valid Unicode and malformed structures are rejected with a 400 naming the field (docs/serving.md has
the table of limits).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from engine.api import FimParts, GenerationRequest, Message, SamplingParams, Timings, Usage
from engine.sampling import BIAS_LIMIT, PENALTY_LIMIT, SEED_MAX, SEED_MIN

# OpenAI's own defaults, so clients that leave them out get what they expect.
DEFAULT_COMPLETION_MAX_TOKENS = 16
DEFAULT_CHAT_MAX_TOKENS = 512
MAX_STOP_SEQUENCES = 4  # OpenAI's limit (vLLM's server enforces it too)
MAX_STOP_CHARS = 1000  # per stop sequence: text that may begin one is held back from the stream
MAX_LOGIT_BIAS = 1024  # tokens in one logit_bias
MAX_SAMPLES = 16
# Sampling and output parameters of OpenAI's and vLLM's APIs that mimo serve does not implement, with the values
# that mean "off" (clients that send the default are served; anything else is a 400 naming the field).
UNSUPPORTED: dict[str, tuple] = {
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "echo": (None, False),
    "best_of": (None, 1),
    "top_k": (None, 0, -1),
    "min_p": (None, 0, 0.0),
    "repetition_penalty": (None, 1, 1.0),
    "min_tokens": (None, 0),
    "ignore_eos": (None, False),
    "use_beam_search": (None, False),
    "length_penalty": (None, 1, 1.0),
    "stop_token_ids": (None, ()),
    "bad_words": (None, ()),
    "allowed_token_ids": (None,),
    "include_stop_str_in_output": (None, False),
    "prompt_logprobs": (None,),
    "guided_json": (None,),
    "guided_regex": (None,),
    "guided_choice": (None,),
    "guided_grammar": (None,),
    "structured_outputs": (None,),
    "tools": (None, ()),
    "functions": (None, ()),
    "tool_choice": (None, "none", "auto"),
    "function_call": (None, "none", "auto"),
}

Finite = Annotated[float, Field(allow_inf_nan=False)]


def valid_text(value: str) -> str:
    """Text that can be encoded: JSON's \\ud800 escapes decode to lone surrogates, which no tokenizer reads."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as bad:
        raise PydanticCustomError(
            "invalid_unicode",
            "contains a lone surrogate ({char} at character {at}); send valid Unicode",
            {"char": f"\\u{ord(value[bad.start]):04x}", "at": bad.start},
        ) from None
    return value


class StreamOptions(BaseModel):
    include_usage: bool = False


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    name: str = "output"
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(BaseModel):
    """OpenAI's structured output: ``text``, ``json_object`` (any JSON object) or ``json_schema``."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_when_asked(self):
        if self.type == "json_schema" and self.json_schema is None:
            raise PydanticCustomError("missing", "type json_schema needs a json_schema object with a 'schema'")
        if self.json_schema is not None:
            try:
                json.dumps(self.json_schema.model_dump(by_alias=True), ensure_ascii=False).encode("utf-8")
            except (UnicodeEncodeError, ValueError) as bad:
                raise PydanticCustomError(
                    "invalid_schema", "json_schema is not valid JSON text ({bad})", {"bad": str(bad)}
                ) from None
        return self

    def schema_or_none(self) -> dict | None:
        if self.type == "json_schema":
            return self.json_schema.schema_
        return {"type": "object"} if self.type == "json_object" else None


class _SamplingFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    temperature: float = Field(1.0, ge=0.0, le=2.0, allow_inf_nan=False)
    top_p: float = Field(1.0, gt=0.0, le=1.0, allow_inf_nan=False)
    seed: int | None = None
    n: int = Field(1, ge=1, le=MAX_SAMPLES)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    presence_penalty: float = Field(0.0, ge=-PENALTY_LIMIT, le=PENALTY_LIMIT, allow_inf_nan=False)
    frequency_penalty: float = Field(0.0, ge=-PENALTY_LIMIT, le=PENALTY_LIMIT, allow_inf_nan=False)
    # Token id (a JSON key, so a string of digits) -> a bias from -100 to 100 added to its logit.
    logit_bias: dict[Annotated[int, Field(ge=0)], Annotated[Finite, Field(ge=-BIAS_LIMIT, le=BIAS_LIMIT)]] | None = (
        Field(None, max_length=MAX_LOGIT_BIAS)
    )
    # Our extension: switch MTP speculative decoding off for one request (benchmarks, A/B checks).
    use_mtp: bool = True
    # Enforced by grammar-constrained decoding on both backends (vLLM's structured outputs; engine.grammar).
    response_format: ResponseFormat | None = None
    # Declared so that asking for them is a 400 naming them (see UNSUPPORTED).
    logprobs: Any = None
    top_logprobs: Any = None
    echo: Any = None
    best_of: Any = None
    top_k: Any = None
    min_p: Any = None
    repetition_penalty: Any = None
    min_tokens: Any = None
    ignore_eos: Any = None
    use_beam_search: Any = None
    length_penalty: Any = None
    stop_token_ids: Any = None
    bad_words: Any = None
    allowed_token_ids: Any = None
    include_stop_str_in_output: Any = None
    prompt_logprobs: Any = None
    guided_json: Any = None
    guided_regex: Any = None
    guided_choice: Any = None
    guided_grammar: Any = None
    structured_outputs: Any = None
    tools: Any = None
    functions: Any = None
    tool_choice: Any = None
    function_call: Any = None

    @model_validator(mode="before")
    @classmethod
    def _a_json_object(cls, data: Any) -> Any:
        if isinstance(data, bytes):  # FastAPI hands over the raw body when it was not sent as JSON
            raise PydanticCustomError(
                "content_type", "the body was not read as JSON: send it with the header Content-Type: application/json"
            )
        return data

    @field_validator(*UNSUPPORTED)
    @classmethod
    def _not_asked_for(cls, value: Any, info: ValidationInfo) -> Any:
        """None when the value means "off" (its default); a 400 naming the field otherwise."""
        off = UNSUPPORTED[info.field_name]
        if value in off or (isinstance(value, list) and not value and () in off):
            return None
        raise PydanticCustomError("unsupported", "not supported by mimo serve; leave it out")

    @field_validator("seed", mode="before")
    @classmethod
    def _seed_in_range(cls, value: Any) -> Any:
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if value is None or (whole and not isinstance(value, bool) and SEED_MIN <= value <= SEED_MAX):
            return None if value is None else int(value)
        raise PydanticCustomError(
            "seed_range", "seed must be an integer from -2**63 to 2**64 - 1 (64 bits, signed or unsigned)"
        )

    @field_validator("model")
    @classmethod
    def _model_text(cls, value: str | None) -> str | None:
        return None if value is None else valid_text(value)

    @field_validator("stop")
    @classmethod
    def _few_short_stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        stops = [stop] if isinstance(stop, str) else stop or []
        if len(stops) > MAX_STOP_SEQUENCES:
            raise PydanticCustomError(
                "too_many_stops",
                "at most {most} stop sequences, got {count}",
                {"most": MAX_STOP_SEQUENCES, "count": len(stops)},
            )
        for text in stops:
            valid_text(text)
            if len(text) > MAX_STOP_CHARS:
                raise PydanticCustomError(
                    "stop_too_long",
                    "a stop sequence has at most {most} characters, got {length}",
                    {"most": MAX_STOP_CHARS, "length": len(text)},
                )
        return stop

    def sampling(self, max_tokens: int) -> SamplingParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stop=stop,
            n=self.n,
            json_schema=self.response_format.schema_or_none() if self.response_format else None,
            logit_bias=self.logit_bias or None,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
        )


class CompletionRequest(_SamplingFields):
    prompt: str | list[str]
    suffix: str | None = None  # given: a fill-in-the-middle request, rendered with the model's FIM template
    max_tokens: int = Field(DEFAULT_COMPLETION_MAX_TOKENS, ge=1)

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, prompt: str | list[str]) -> str | list[str]:
        if isinstance(prompt, list) and len(prompt) != 1:
            raise PydanticCustomError(
                "one_prompt", "send one prompt per request (a string, or a list holding one string)"
            )
        valid_text(prompt if isinstance(prompt, str) else prompt[0])
        return prompt

    @field_validator("suffix")
    @classmethod
    def _suffix_text(cls, suffix: str | None) -> str | None:
        return None if suffix is None else valid_text(suffix)

    def to_generation_request(self) -> GenerationRequest:
        prompt = self.prompt if isinstance(self.prompt, str) else self.prompt[0]
        sampling = self.sampling(self.max_tokens)
        if self.suffix is not None:
            return GenerationRequest(
                fim=FimParts(prefix=prompt, suffix=self.suffix), sampling=sampling, use_mtp=self.use_mtp
            )
        return GenerationRequest(prompt=prompt, sampling=sampling, use_mtp=self.use_mtp)


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str

    @field_validator("content")
    @classmethod
    def _content_text(cls, content: str) -> str:
        return valid_text(content)


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # the newer OpenAI name for max_tokens

    def to_generation_request(self) -> GenerationRequest:
        max_tokens = self.max_completion_tokens or self.max_tokens or DEFAULT_CHAT_MAX_TOKENS
        messages = tuple(Message(role=m.role, content=m.content) for m in self.messages)
        return GenerationRequest(messages=messages, sampling=self.sampling(max_tokens), use_mtp=self.use_mtp)


# ---- responses -------------------------------------------------------------------------------------------


class UsageInfo(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def of(cls, usage: Usage) -> UsageInfo:
        total = usage.prompt_tokens + usage.completion_tokens
        return cls(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, total_tokens=total)


class TimingsInfo(BaseModel):
    """Our extension (llama.cpp's server has a similar `timings`): lets clients see MTP acceptance."""

    time_to_first_token_s: float = 0.0
    total_s: float = 0.0
    tokens_per_s: float = 0.0
    mtp_drafts_proposed: int = 0
    mtp_drafts_accepted: int = 0
    mtp_steps: int = 0
    mtp_accepted_per_position: list[int] = []

    @classmethod
    def of(cls, timings: Timings) -> TimingsInfo:
        return cls(**timings.__dict__)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class CompletionChoice(BaseModel):
    index: int
    text: str
    finish_reason: str | None = None
    logprobs: None = None


class CompletionResponse(BaseModel):
    id: str = Field(default_factory=lambda: new_id("cmpl"))
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo | None = None
    timings: TimingsInfo | None = None


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChoice(BaseModel):
    index: int
    message: ChatDelta
    finish_reason: str | None = None


class ChatStreamChoice(BaseModel):
    index: int
    delta: ChatDelta
    finish_reason: str | None = None


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=lambda: new_id("chatcmpl"))
    object: Literal["chat.completion", "chat.completion.chunk"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice] | list[ChatStreamChoice]
    usage: UsageInfo | None = None
    timings: TimingsInfo | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "mimo-code"
    max_model_len: int  # vLLM's name; clients read the context length from it


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error body; `status` travels beside it to the HTTP edge and is not serialised."""

    error: ErrorDetail
    status: int = Field(400, exclude=True)
    retry_after_s: float | None = Field(None, exclude=True)


def error(
    status: int,
    message: str,
    kind: str,
    code: str | None = None,
    param: str | None = None,
    retry_after_s: float | None = None,
) -> ErrorResponse:
    # Messages may quote the request (a model name, a dict key), which may hold lone surrogates that no JSON
    # encoder writes as UTF-8: escape them, so an error about bad text is never itself a 500.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    param = None if param is None else param.encode("utf-8", "backslashreplace").decode("utf-8")
    return ErrorResponse(
        error=ErrorDetail(message=message, type=kind, code=code, param=param),
        status=status,
        retry_after_s=retry_after_s,
    )
