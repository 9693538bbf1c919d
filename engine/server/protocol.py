"""The OpenAI-compatible wire format: pydantic request and response models, and their conversion to engine.api.

Only the fields we honour are declared; unknown fields are ignored (as OpenAI-compatible servers do), so
clients written for OpenAI or vLLM work unchanged. Values outside their range are rejected with a 400.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.api import FimParts, GenerationRequest, Message, SamplingParams, Timings, Usage

# OpenAI's own defaults, so clients that leave them out get what they expect.
DEFAULT_COMPLETION_MAX_TOKENS = 16
DEFAULT_CHAT_MAX_TOKENS = 512


class StreamOptions(BaseModel):
    include_usage: bool = False


class _SamplingFields(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = None
    n: int = Field(1, ge=1, le=16)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    # Our extension: switch MTP speculative decoding off for one request (benchmarks, A/B checks).
    use_mtp: bool = True
    # OpenAI's structured output: {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}.
    # Backends with structured decoding (vLLM) enforce the schema; the native backend ignores it.
    response_format: dict | None = None
    # Not supported; declared so that asking for them is a clear 400 rather than silently ignored.
    logprobs: int | bool | None = None
    echo: bool = False

    @model_validator(mode="after")
    def _nothing_unsupported(self):
        if self.logprobs or self.echo:
            raise ValueError("logprobs and echo are not supported by mimo serve; leave them out")
        _json_schema(self.response_format)  # a malformed response_format is a 400 here, not an error later
        return self

    def sampling(self, max_tokens: int) -> SamplingParams:
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            stop=stop,
            n=self.n,
            json_schema=_json_schema(self.response_format),
        )


def _json_schema(response_format: dict | None) -> dict | None:
    if not response_format or response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        raise ValueError("response_format json_schema needs a 'schema' object")
    return schema


class CompletionRequest(_SamplingFields):
    prompt: str | list[str]
    suffix: str | None = None  # given: a fill-in-the-middle request, rendered with the model's FIM template
    max_tokens: int = Field(DEFAULT_COMPLETION_MAX_TOKENS, ge=1)

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, prompt: str | list[str]) -> str | list[str]:
        if isinstance(prompt, list) and len(prompt) != 1:
            raise ValueError("send one prompt per request (a string, or a list holding one string)")
        return prompt

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
    return ErrorResponse(
        error=ErrorDetail(message=message, type=kind, code=code, param=param),
        status=status,
        retry_after_s=retry_after_s,
    )
