"""Offline code on this machine to train on: the Python standard library and the installed distributions.

Nothing is downloaded. Each installed distribution becomes one source whose files are those its RECORD lists
(so only what pip installed), with the licence read from its METADATA; the build then keeps the sources that the
allow-list admits and names every source and licence in the manifest.

On the command line: `--from-installed` (the standard library plus every installed distribution), or the source
specs `installed:stdlib` and `installed:NAME` for single ones.
"""

from __future__ import annotations

import importlib.metadata
import sys
import sysconfig
from pathlib import Path

from training.data.collect import Source, list_files
from training.data.filters import language_of, path_skip_reason
from training.data.licenses import License, from_metadata
from training.errors import UserError
from training.tokenizer import TrainingText

STDLIB = "stdlib"
INSTALLED_PREFIX = "installed:"


def stdlib_source() -> Source:
    """The standard library of the running interpreter (walked; its site-packages folder is skipped)."""
    version = ".".join(map(str, sys.version_info[:3]))
    return Source(
        name=f"python-stdlib-{version}",
        root=Path(sysconfig.get_paths()["stdlib"]),
        license=License("PSF-2.0", f"Python {version} standard library"),
    )


def installed_sources(names: list[str] | None = None) -> list[Source]:
    """One source per installed distribution with code files (all of them, or those named), sorted by name."""
    wanted = {_canonical(name) for name in names} if names is not None else None
    sources, seen, found = [], set(), set()
    for dist in importlib.metadata.distributions():
        name = _canonical(dist.metadata.get("Name") or "")
        if not name or name in seen or (wanted is not None and name not in wanted):
            continue
        seen.add(name)
        if source := _distribution_source(dist, name):
            sources.append(source)
            found.add(name)
    if wanted is not None and (missing := wanted - found):
        raise UserError(f"no installed distribution with code named {', '.join(sorted(missing))}; see `pip list`")
    return sorted(sources, key=lambda source: source.name)


def _distribution_source(dist, name: str) -> Source | None:
    records = dist.files or []
    code = tuple(
        sorted(
            str(record).replace("\\", "/")
            for record in records
            if language_of(str(record)) and not str(record).startswith("..") and ".dist-info/" not in str(record)
        )
    )
    if not code:
        return None  # metadata-only or editable installs: nothing to read
    root = Path(dist.locate_file(""))
    texts = [_read_text(dist.locate_file(record)) for record in records if _is_license_file(str(record))]
    return Source(
        name=f"{name}-{dist.version}",
        root=root,
        files=code,
        license=from_metadata(dist.metadata, [text for text in texts if text]),
    )


def _is_license_file(record: str) -> bool:
    name = record.rsplit("/", 1)[-1].upper()
    return ".dist-info/" in record and name.startswith(("LICENSE", "LICENCE", "COPYING"))


def _read_text(path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def resolve_installed(spec: str) -> list[Source]:
    """`installed:stdlib` or `installed:NAME` (a distribution name as pip shows it)."""
    name = spec[len(INSTALLED_PREFIX) :]
    if name == STDLIB:
        return [stdlib_source()]
    return installed_sources([name])


def all_installed() -> list[Source]:
    """What `--from-installed` means: the standard library plus every installed distribution with code."""
    return [stdlib_source(), *installed_sources()]


def resolve_specs(specs: list[str], from_installed: bool = False) -> list[Source]:
    """Command-line sources: folders or git repositories (`PATH` or `NAME=PATH`), `installed:stdlib`,
    `installed:NAME`; `from_installed` adds the standard library and every installed distribution."""
    from training.data.collect import source_from_path

    sources = all_installed() if from_installed else []
    for spec in specs:
        sources.extend(resolve_installed(spec) if spec.startswith(INSTALLED_PREFIX) else [source_from_path(spec)])
    return sources


def training_files(specs: list[str], from_installed: bool = False) -> TrainingText:
    """Files to train on: single files as given, and each source's files that pass the path rules (vendored, lock,
    generated, minified and non-code files are left out, counted like the content checks in `texts`)."""
    corpus = TrainingText()
    files = [Path(spec) for spec in specs if Path(spec).is_file()]
    for source in resolve_specs([spec for spec in specs if not Path(spec).is_file()], from_installed):
        for path in list_files(source):
            if reason := path_skip_reason(path):
                corpus.skipped[reason] += 1
            elif (source.root / path).is_file():
                files.append(source.root / path)
    if not files:
        raise UserError("empty corpus: no code files among the sources; give folders, repositories or files")
    corpus.files = files
    return corpus
