"""Pydantic validation errors as lines a person can act on: the key, the value given and what is allowed.

Every settings reader (the language server's options, the pretraining and mixture configs...) validates with
pydantic models that forbid unknown keys and words its errors through here, so a bad value reads the same
wherever it is given:

    completion.debounceMs = -5: must be at least 0
    unknown key optim.beta3 (did you mean beta2?); allowed: lr, min_lr, beta1, beta2, ...

It lives in the engine, the one package every other may import.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

Loc = tuple[str | int, ...]

_UNKNOWN = ("unexpected_keyword_argument", "extra_forbidden")
_KINDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "path_type": "a path (a string)",
    "list_type": "a list",
    "tuple_type": "a list",
}
_BOUNDS = {"ge": "at least {}", "gt": "greater than {}", "le": "at most {}", "lt": "less than {}"}
_MAPPINGS = ("dict_type", "dataclass_type", "dataclass_exact_type", "model_type", "model_attributes_type")


@dataclass(frozen=True)
class KeyProblem:
    loc: Loc  # where in the input, with the key names as the input spelled them
    text: str  # one line: the key, the value given and what is allowed


def key_problems(error: ValidationError, root: Any, *, mapping: str = "a table", prefix: Loc = ()) -> list[KeyProblem]:
    """One problem per error of `error`, raised validating `root` (a pydantic model or dataclass type).

    `mapping` is what a nested section is called in the input's format ("a table" in TOML, "an object" in JSON);
    `prefix` is where `root` sits in a larger file (its keys are named from there).
    """
    return [KeyProblem(tuple(item["loc"]), _describe(item, root, mapping, prefix)) for item in error.errors()]


def problem_lines(error: ValidationError, root: Any, *, mapping: str = "a table", prefix: Loc = ()) -> list[str]:
    return [problem.text for problem in key_problems(error, root, mapping=mapping, prefix=prefix)]


def key_name(loc: Iterable[str | int]) -> str:
    """`("stages", 1, "seq_len")` -> `stages[1].seq_len`."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def close_match(key: str, allowed: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return matches[0] if matches else None


def allowed_keys(root: Any, loc: Loc) -> list[str] | None:
    """The keys the section at `loc` accepts (aliases where the model has them), None if it is not a section."""
    current = root
    for part in loc:
        current = _unwrap(current)
        fields = _fields(current)
        if fields is not None:
            field = next((f for name, f in fields.items() if part in (name, f.alias)), None)
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) in (dict, list, tuple):
            args = [arg for arg in typing.get_args(current) if arg is not Ellipsis]
            current = args[-1] if args else Any
        else:
            return None
    fields = _fields(_unwrap(current))
    return None if fields is None else [f.alias or name for name, f in fields.items()]


def _describe(item: dict, root: Any, mapping: str, prefix: Loc) -> str:
    loc, kind = tuple(item["loc"]), item["type"]
    key = key_name((*prefix, *loc))
    if kind in _UNKNOWN:
        return _unknown(loc, root, prefix)
    if kind == "missing":
        return f"{key} is missing (required)"
    allowed = _allowed(item, mapping)
    if allowed is None:  # a custom check: its message already says what is wrong
        message = str(item.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if isinstance(item.get("input"), (dict, list, tuple)) or not key:  # a section: the key says enough
            return f"{key}: {message}" if key else message
        return f"{key} = {_shown(item.get('input'))}: {message}"
    given = _shown(item.get("input"))
    return f"{key} = {given}: must be {allowed}" if key else f"{given}: must be {allowed}"


def _unknown(loc: Loc, root: Any, prefix: Loc) -> str:
    key, parent = str(loc[-1]), loc[:-1]
    allowed = allowed_keys(root, parent) or []
    guess = close_match(key, allowed)
    hint = f" (did you mean {key_name((*prefix, *parent, guess))}?)" if guess else ""
    listed = f"; allowed: {', '.join(allowed)}" if allowed else ""
    return f"unknown key {key_name((*prefix, *loc))}{hint}{listed}"


def _allowed(item: dict, mapping: str) -> str | None:
    kind, context = item["type"], item.get("ctx") or {}
    if kind in _KINDS:
        return _KINDS[kind]
    if kind in _MAPPINGS:
        return mapping
    if kind in ("literal_error", "enum"):
        return f"one of {context.get('expected', '')}"
    if kind.startswith(("greater_than", "less_than")):
        bound = next(name for name in _BOUNDS if name in context)
        limit = context[bound]
        return _BOUNDS[bound].format(int(limit) if isinstance(limit, float) and limit.is_integer() else limit)
    if kind == "string_too_short":
        return (
            "a non-empty string" if context.get("min_length") == 1 else f"at least {context['min_length']} characters"
        )
    if kind == "too_short":
        return "non-empty" if context.get("min_length") == 1 else f"at least {context.get('min_length')} entries long"
    if kind in ("value_error", "assertion_error"):
        return None
    return str(item.get("msg", "")).replace("Input should be ", "", 1) or kind


def _shown(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:  # a circular structure
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unwrap(annotation: Any) -> Any:
    """`Annotated[X, ...]` and `X | None` -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _fields(annotation: Any) -> dict | None:
    fields = getattr(annotation, "__pydantic_fields__", None)
    return fields if isinstance(fields, dict) else None
