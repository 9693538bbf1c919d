"""The machine-readable part of a checkpoint's model card: ``mimo-card.json`` beside the weights, read into
``EngineInfo.languages`` so that the editor completes only where the model was trained.

    {"model": "mimo-nano", "languages": ["python"]}

``languages`` are LSP language ids. A checkpoint without the file (a Hugging Face model, a remote server)
claims no languages: None, which callers read as "any language".
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

CARD_FILE = "mimo-card.json"

log = logging.getLogger(__name__)


@cache  # info() is asked on every completion; a checkpoint's card does not change while it is loaded
def trained_languages(model_path: Path) -> tuple[str, ...] | None:
    """The languages the card at ``model_path`` lists, or None without a usable card (said in the log)."""
    card = Path(model_path) / CARD_FILE
    if not card.is_file():
        return None
    try:
        languages = json.loads(card.read_text(encoding="utf-8")).get("languages")
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("ignored %s: not a JSON object (%s)", card, exc)
        return None
    if languages is None:
        return None  # a card that lists no languages claims none: any language
    if not isinstance(languages, list) or not all(isinstance(item, str) and item for item in languages):
        log.warning("ignored %s: 'languages' must be a list of language ids", card)
        return None
    return tuple(languages)
