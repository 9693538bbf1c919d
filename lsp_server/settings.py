"""Typed settings for the language server, validated from `initializationOptions` and
`workspace/didChangeConfiguration` at the protocol edge. Nothing below the server reads raw options.

Options use the editors' camelCase names, nested by section (documented in docs/lsp.md):

    {"engine": {"model": "nano", "url": null, "backend": "native"},
     "completion": {"debounceMs": 75, "maxDebounceMs": 400, "maxLines": 12, "contextTokens": 0},
     "languages": {"lua": false},
     "diagnostics": {"enabled": true},
     "telemetry": {"enabled": true, "path": null}}

The models below are pydantic dataclasses: unknown keys are errors, numbers are not read from strings or
booleans. An editor's settings are applied key by key, though: a bad or unknown key is reported (the problem
list goes to the editor) and falls back to its default, and every other key still applies.
"""

from __future__ import annotations

import copy
import json
import typing
from dataclasses import field
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, TypeAdapter, ValidationError
from pydantic import field_validator as _field_validator
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass

from engine.config_errors import key_problems

Backend = Literal["native", "vllm", "instant"]
BACKENDS: tuple[str, ...] = typing.get_args(Backend)

# Every section takes the editors' camelCase names; Python code may use the field names.
_OPTIONS = ConfigDict(extra="forbid", alias_generator=to_camel, validate_by_name=True, validate_by_alias=True)
_Text = Annotated[StrictStr, Field(min_length=1)]
_Count = Annotated[StrictInt, Field(ge=0)]
_Millis = Annotated[StrictFloat, Field(ge=0)]


@dataclass(frozen=True, kw_only=True, config=_OPTIONS)
class EngineSettings:
    model: _Text = "nano"  # a registry name ("nano") or a checkpoint directory
    url: _Text | None = None  # an OpenAI-compatible server; the local model becomes the fallback
    backend: Backend = "native"  # "instant" answers a fixed text, for benchmarks and tests
    remote_model: _Text | None = None  # the model name on the remote server; None: the first it lists
    # How to render FIM for the remote server (vLLM has no `suffix`): MiMo-7B has a Qwen2-family tokenizer.
    remote_fim_template: _Text = "qwen"
    threads: _Count = 0  # CPU threads for the local model; 0: the engine's default
    instant_text: _Text = "pass"  # what the instant backend answers
    instant_delay_ms: _Millis = 0.0  # the instant backend's pause between streamed characters
    # The remote server's API key (`mimo serve --api-key`); unset: $MIMO_API_KEY. Kept out of reprs and logs.
    api_key: _Text | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True, config=_OPTIONS)
class CompletionSettings:
    debounce_ms: _Millis = 75.0  # the shortest wait before asking the model
    max_debounce_ms: _Millis = 400.0  # the adaptive debounce never waits longer
    max_lines: Annotated[StrictInt, Field(ge=1)] = 12  # a multi-line completion is cut after this many lines
    context_tokens: _Count = 0  # prompt budget (prefix, suffix, cross-file snippets); 0: by where the model runs
    single_line_tokens: Annotated[StrictInt, Field(ge=1)] = 48
    multi_line_tokens: Annotated[StrictInt, Field(ge=1)] = 192
    # fim, prefix or chat (lsp_server.prompt_modes); auto: what the server advertises, else by model family
    prompt_mode: Literal["auto", "fim", "prefix", "chat"] = "auto"


@dataclass(frozen=True, kw_only=True, config=_OPTIONS)
class Settings:
    engine: EngineSettings = field(default_factory=EngineSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    languages: dict[str, StrictBool] = field(default_factory=dict)  # language id -> enabled; absent: enabled
    diagnostics: StrictBool = True  # publish our own tree-sitter syntax diagnostics
    telemetry: StrictBool = True
    telemetry_path: _Text | None = None  # None: the default data directory (lsp_server.telemetry)

    def language_enabled(self, language: str | None) -> bool:
        return self.languages.get(language or "", True)


@dataclass(frozen=True, kw_only=True, config=_OPTIONS)
class _DiagnosticsOptions:
    enabled: StrictBool = True


@dataclass(frozen=True, kw_only=True, config=_OPTIONS)
class _TelemetryOptions:
    enabled: StrictBool = True
    path: _Text | None = None


@dataclass(frozen=True, kw_only=True, config=_OPTIONS)
class _Options:
    """The options as editors send them; `Settings` flattens the two one-switch sections."""

    engine: EngineSettings = field(default_factory=EngineSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    languages: dict[str, StrictBool] = field(default_factory=dict)
    diagnostics: _DiagnosticsOptions = field(default_factory=_DiagnosticsOptions)
    telemetry: _TelemetryOptions = field(default_factory=_TelemetryOptions)

    @_field_validator("diagnostics", "telemetry", mode="before")
    @classmethod
    def _bare_switch(cls, value: Any) -> Any:
        """`"telemetry": false` is short for `"telemetry": {"enabled": false}`."""
        if isinstance(value, bool):
            return {"enabled": value}
        if not isinstance(value, dict):
            raise ValueError('must be true or false, or an object such as {"enabled": true}')
        return value

    def settings(self) -> Settings:
        return Settings(
            engine=self.engine,
            completion=self.completion,
            languages=self.languages,
            diagnostics=self.diagnostics.enabled,
            telemetry=self.telemetry.enabled,
            telemetry_path=self.telemetry.path,
        )


_READER = TypeAdapter(_Options)
_NOT_AN_OBJECT = "settings must be an object; using defaults"


def settings_from_options(options: Any) -> tuple[Settings, list[str]]:
    """Settings from an options object, plus one line per problem found; each bad key falls back to its default."""
    if options is None:
        return Settings(), []
    if isinstance(options, dict):
        options = options.get("mimo", options)  # didChangeConfiguration often nests them under the section name
    if not isinstance(options, dict):
        return Settings(), [_NOT_AN_OBJECT]
    raw, problems = copy.deepcopy(options), []
    while True:  # each round drops at least one key, so this ends
        try:
            return _READER.validate_python(raw).settings(), problems
        except ValidationError as error:
            for problem in key_problems(error, _Options, mapping="an object"):
                if not _drop(raw, problem.loc):  # nothing to fall back from: keep the defaults
                    return Settings(), [*problems, f"{problem.text}; using defaults"]
                problems.append(problem.text + _fallback(problem.loc))


def _drop(raw: dict, loc: tuple) -> bool:
    """Removes the key at `loc` from the nested options; False when there is none to remove."""
    parent: Any = raw
    for part in loc[:-1]:
        if not isinstance(parent, dict) or part not in parent:
            return False
        parent = parent[part]
    if not loc or not isinstance(parent, dict) or loc[-1] not in parent:
        return False
    del parent[loc[-1]]
    return True


def _fallback(loc: tuple) -> str:
    """What a dropped key falls back to, for the problem line: its default, or nothing for an unknown key."""
    value: Any = _Options()
    for part in loc:
        fields = getattr(type(value), "__pydantic_fields__", {})
        name = next((n for n, f in fields.items() if part in (n, f.alias)), None)
        if name is None:
            return "; ignored"
        value = getattr(value, name)
    if hasattr(type(value), "__pydantic_fields__"):
        return "; using its defaults"
    return f"; using {json.dumps(value)}"
