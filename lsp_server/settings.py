"""Typed settings for the language server, converted from `initializationOptions` and
`workspace/didChangeConfiguration` at the protocol edge. Nothing below the server reads raw options.

Options use the editors' camelCase names, nested by section (documented in docs/lsp.md):

    {"engine": {"model": "nano", "url": null, "backend": "native"},
     "completion": {"debounceMs": 75, "maxDebounceMs": 400, "maxLines": 12, "contextTokens": 0},
     "languages": {"lua": false},
     "diagnostics": {"enabled": true},
     "telemetry": {"enabled": true, "path": null}}

An invalid value is reported (the problem list goes to the editor) and replaced by its default.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

BACKENDS = ("native", "vllm", "instant")


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    model: str = "nano"  # a registry name ("nano") or a checkpoint directory
    url: str | None = None  # an OpenAI-compatible server; the local model becomes the fallback
    backend: str = "native"  # "native", "vllm", or "instant" (a fixed answer, for benchmarks and tests)
    remote_model: str | None = None  # the model name on the remote server; None: the first it lists
    # How to render FIM for the remote server (vLLM has no `suffix`): MiMo-7B has a Qwen2-family tokenizer.
    remote_fim_template: str = "qwen"
    threads: int = 0  # CPU threads for the local model; 0: the engine's default
    instant_text: str = "pass"  # what the instant backend answers
    instant_delay_ms: float = 0.0  # the instant backend's pause between streamed characters


@dataclass(frozen=True, kw_only=True)
class CompletionSettings:
    debounce_ms: float = 75.0  # the shortest wait before asking the model
    max_debounce_ms: float = 400.0  # the adaptive debounce never waits longer
    max_lines: int = 12  # a multi-line completion is cut after this many lines
    context_tokens: int = 0  # prompt budget (prefix, suffix, cross-file snippets); 0: by where the model runs
    single_line_tokens: int = 48
    multi_line_tokens: int = 192


@dataclass(frozen=True, kw_only=True)
class Settings:
    engine: EngineSettings = field(default_factory=EngineSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    languages: dict[str, bool] = field(default_factory=dict)  # language id -> enabled; absent means enabled
    diagnostics: bool = True  # publish our own tree-sitter syntax diagnostics
    telemetry: bool = True
    telemetry_path: str | None = None  # None: the default under ~/.local/share/mimo

    def language_enabled(self, language: str | None) -> bool:
        return self.languages.get(language or "", True)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _convert_section(cls: type, raw: Any, section: str, problems: list[str]) -> Any:
    """Builds a dataclass section from a dict of camelCase options, keeping defaults for bad values."""
    default = cls()
    if raw is None:
        return default
    if not isinstance(raw, dict):
        problems.append(f"'{section}' must be an object; using defaults")
        return default
    values: dict[str, Any] = {}
    known = {_camel(f.name): f for f in fields(cls)}
    for key, value in raw.items():
        if key not in known:
            problems.append(f"unknown setting '{section}.{key}'; ignored")
            continue
        name = known[key].name
        checked = _checked(value, getattr(default, name), f"{section}.{key}", problems)
        if checked is not None or getattr(default, name) is None:
            values[name] = checked
    return replace(default, **values)


def _checked(value: Any, default: Any, name: str, problems: list[str]) -> Any:
    """The value when it has the default's type (numbers must not be negative), else None and a problem."""
    if default is None or isinstance(default, str):
        if value is None and default is None:
            return None
        if isinstance(value, str) and value:
            return value
        problems.append(f"'{name}' must be a non-empty string; using {default!r}")
        return None
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        problems.append(f"'{name}' must be true or false; using {default}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        problems.append(f"'{name}' must be a number >= 0; using {default}")
        return None
    return type(default)(value)


def settings_from_options(options: Any) -> tuple[Settings, list[str]]:
    """Settings from an options object, plus one line per problem found (each problem falls back to a default)."""
    problems: list[str] = []
    if options is None:
        return Settings(), problems
    if not isinstance(options, dict):
        return Settings(), ["settings must be an object; using defaults"]
    options = options.get("mimo", options)  # didChangeConfiguration often nests them under the section name
    engine = _convert_section(EngineSettings, options.get("engine"), "engine", problems)
    if engine.backend not in BACKENDS:
        problems.append(f"'engine.backend' must be one of {', '.join(BACKENDS)}; using 'native'")
        engine = replace(engine, backend="native")
    completion = _convert_section(CompletionSettings, options.get("completion"), "completion", problems)
    if completion.max_lines < 1:
        problems.append("'completion.maxLines' must be at least 1; using 12")
        completion = replace(completion, max_lines=12)
    languages = _languages(options.get("languages"), problems)
    diagnostics = _section_flag(options.get("diagnostics"), "diagnostics", problems)
    telemetry_raw = options.get("telemetry")
    telemetry = _section_flag(telemetry_raw, "telemetry", problems)
    path = telemetry_raw.get("path") if isinstance(telemetry_raw, dict) else None
    if path is not None and not isinstance(path, str):
        problems.append("'telemetry.path' must be a string; using the default")
        path = None
    settings = Settings(
        engine=engine,
        completion=completion,
        languages=languages,
        diagnostics=diagnostics,
        telemetry=telemetry,
        telemetry_path=path,
    )
    return settings, problems


def _languages(raw: Any, problems: list[str]) -> dict[str, bool]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, bool) for v in raw.values()):
        problems.append("'languages' must map language ids to true/false; enabling all")
        return {}
    return dict(raw)


def _section_flag(raw: Any, section: str, problems: list[str]) -> bool:
    if raw is None:
        return True
    enabled = raw.get("enabled", True) if isinstance(raw, dict) else raw
    if isinstance(enabled, bool):
        return enabled
    problems.append(f"'{section}.enabled' must be true or false; using true")
    return True
