"""Which documents get completions: the languages the model was trained on, unless a setting says otherwise.

The built-in nano was trained on Python only; asked to complete Go or Rust it writes C and loops, and no
filter can tell such noise from code (a C declaration can be valid Go). So by default a model completes only
in the languages its card lists (``EngineInfo.languages``, from the checkpoint's mimo-card.json). A model that
lists none (a remote server, a Hugging Face checkpoint) completes in every language. The ``languages`` setting
overrides either way: ``{"go": true}`` turns Go on for nano, ``{"lua": false}`` turns Lua off, and ``"*"``
sets the answer for every language not named.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.api import EngineInfo

ANY_LANGUAGE = "*"


def completes_in(language_id: str, settings: Mapping[str, bool], engine: EngineInfo) -> bool:
    """Whether to complete in a document of ``language_id`` (the editor's id, e.g. "go") with this engine."""
    if language_id in settings:
        return settings[language_id]
    if ANY_LANGUAGE in settings:
        return settings[ANY_LANGUAGE]
    return engine.languages is None or language_id in engine.languages


def turned_off(language_id: str, settings: Mapping[str, bool]) -> bool:
    """True when the settings alone rule the language out (no need to wait for the model to know)."""
    return settings.get(language_id, settings.get(ANY_LANGUAGE, True)) is False


def why_not(language_id: str, engine: EngineInfo, override: str | None = None) -> str:
    """The message an editor shows once when a language gets no completions because of the model's card;
    ``override`` says how to turn it on anyway (default: the editor's setting)."""
    trained = f"{', '.join(engine.languages)} only" if engine.languages else "no programming language"
    override = override or f'set "languages": {{"{language_id}": true}}'
    return (
        f"MiMo: {engine.model} was trained on {trained}, so it does not complete {language_id or 'plain text'} "
        f"({override} to turn it on anyway)"
    )
