"""The model card (`mimo-card.json`, engine/model_card.py) that our training commands write beside the weights, so
an editor completes only in the languages a model was trained on.

- `mimo train pretrain`: the languages of the data manifests of the mixture's sources that some stage draws from;
- `mimo train repo`: the base model's card with the repository's languages added.

The data pipeline names languages by file extension (training/data/filters.py); the card holds the editors' LSP
language ids, so a few names map to more than one id (`typescript` files include `.tsx`, which editors call
`typescriptreact`; Neovim calls shell `sh`). A source whose manifest does not say what it holds (hand-made
shards) leaves the card without languages, which reads as "any language": a card must never claim less than the
model saw.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from engine.model_card import CARD_FILE

log = logging.getLogger(__name__)

# The data pipeline's language name -> the editors' language ids for the same files (itself when it is one).
LSP_IDS: dict[str, tuple[str, ...]] = {
    "javascript": ("javascript", "javascriptreact"),
    "typescript": ("typescript", "typescriptreact"),
    "shell": ("shellscript", "sh", "bash"),
    "csharp": ("csharp", "cs"),
}


def lsp_ids(languages: Iterable[str]) -> list[str]:
    """The editors' ids for the data pipeline's language names, sorted and without repeats."""
    return sorted({lsp for language in languages for lsp in LSP_IDS.get(language, (language,))})


def manifest_languages(manifest: Mapping) -> set[str] | None:
    """The languages a shard manifest counts tokens for; None when it does not say (no `languages` record)."""
    record = manifest.get("languages")
    if not isinstance(record, Mapping):
        return None
    return {name for name, figures in record.items() if _tokens(figures) > 0}


def _tokens(figures: object) -> int:
    """A manifest's per-language figures ({"files": n, "tokens": n}, or files alone); a bare count is files."""
    if isinstance(figures, Mapping):
        count = figures.get("tokens", figures.get("files"))
        return count if isinstance(count, int) else 0
    return int(figures) if isinstance(figures, int) else 0


def card(model: str, languages: Iterable[str] | None, about: str, **extra: object) -> dict:
    """A card; ``languages`` (editors' ids) None leaves them out: the model claims none, editors complete everywhere."""
    written: dict[str, object] = {"model": model}
    if languages is not None:
        written["languages"] = sorted(set(languages))
    return written | {"about": about, **extra}


def write_card(model_dir: Path, contents: dict) -> Path:
    path = Path(model_dir) / CARD_FILE
    path.write_text(json.dumps(contents, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_card(model_dir: Path) -> dict | None:
    """The card beside a checkpoint, or None without a readable one (said in the log)."""
    path = Path(model_dir) / CARD_FILE
    if not path.is_file():
        return None
    try:
        contents = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.warning("ignored %s: %s", path, error)
        return None
    return contents if isinstance(contents, dict) else None


def pretrain_card(model: str, sources: Mapping[str, Path], weights: Iterable[Mapping[str, float]]) -> dict:
    """The card of a pretrained model: the languages of every source some stage gives a weight."""
    from training.data.shards import read_manifest

    drawn = sorted({name for stage in weights for name, weight in stage.items() if weight > 0})
    found = {name: manifest_languages(read_manifest(sources[name])) for name in drawn}
    unknown = [name for name, languages in found.items() if languages is None]
    if unknown:
        about = f"Pretrained with `mimo train pretrain`; the manifests of {', '.join(unknown)} list no languages."
        return card(model, None, about, sources=drawn)
    languages = lsp_ids(language for languages in found.values() for language in languages or ())
    about = f"Pretrained with `mimo train pretrain` on {', '.join(drawn)}; the languages are their manifests'."
    return card(model, languages, about, sources=drawn)


def repo_card(model: str, base_dir: Path, repo_languages: Iterable[str]) -> dict:
    """The card of a model trained on a repository: the base model's languages with the repository's added; a
    base whose card lists none (any language) stays so."""
    base = read_card(base_dir) or {}
    base_languages = base.get("languages")
    repo = sorted(set(repo_languages))
    name = str(base.get("model") or Path(base_dir).name)
    extra = {"base": name, "repository_languages": repo}
    if not (isinstance(base_languages, list) and all(isinstance(item, str) for item in base_languages)):
        return card(model, None, f"{name} (its card lists no languages) trained with `mimo train repo`.", **extra)
    about = f"{name} trained further with `mimo train repo` on a repository's {', '.join(repo) or 'no'} files."
    return card(model, [*base_languages, *lsp_ids(repo)], about, **extra)
