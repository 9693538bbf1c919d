"""Which licence a source is under, as an SPDX expression, and whether an allow-list admits it.

Evidence, in order of trust: a package's `License-Expression` metadata (PEP 639), its `License` field when that is
a recognisable name, its `License ::` classifiers, then the text of LICENSE/COPYING files (found in a repository's
root or a wheel's dist-info); for repositories also pyproject.toml / package.json. Anything unrecognised is
"unknown", which no allow-list admits: training only on code we know we may use. SPDX expressions are parsed,
normalised and evaluated by `license-expression` (the SPDX licence list it ships).
"""

from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from license_expression import AND, OR, ExpressionError, LicenseSymbol, LicenseWithExceptionSymbol

DEFAULT_ALLOWED = (
    "MIT", "MIT-0", "BSD-2-Clause", "BSD-3-Clause", "0BSD", "Apache-2.0", "ISC", "PSF-2.0", "Unlicense", "Zlib",
    "CC0-1.0", "BSL-1.0", "MIT-CMU", "CNRI-Python",
)  # fmt: skip
UNKNOWN = "unknown"
LICENSE_FILE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENSE.rst", "COPYING", "COPYING.txt", "LICENCE")

# Lower-cased free-text names seen in package metadata -> SPDX id.
_NAME_TO_SPDX = {
    "mit": "MIT", "mit license": "MIT", "the mit license": "MIT", "mit-0": "MIT-0",
    "apache": "Apache-2.0", "apache 2.0": "Apache-2.0", "apache-2.0": "Apache-2.0", "apache 2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0", "apache 2.0 license": "Apache-2.0", "apache software license": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0", "asl 2": "Apache-2.0",
    "bsd": "BSD-3-Clause", "bsd license": "BSD-3-Clause", "new bsd": "BSD-3-Clause", "bsd-3-clause": "BSD-3-Clause",
    "3-clause bsd license": "BSD-3-Clause", "bsd 3-clause": "BSD-3-Clause", "modified bsd": "BSD-3-Clause",
    "bsd-2-clause": "BSD-2-Clause", "simplified bsd": "BSD-2-Clause", "0bsd": "0BSD",
    "isc": "ISC", "isc license": "ISC", "isc license (iscl)": "ISC",
    "psf": "PSF-2.0", "psf-2.0": "PSF-2.0", "python software foundation license": "PSF-2.0",
    "unlicense": "Unlicense", "the unlicense (unlicense)": "Unlicense", "zlib": "Zlib", "cc0-1.0": "CC0-1.0",
    "mpl-2.0": "MPL-2.0", "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "gpl": "GPL-3.0-or-later", "lgpl": "LGPL-3.0-or-later",
}  # fmt: skip

# Distinctive phrases of licence texts -> SPDX id; first match wins, so the more specific come first.
_TEXT_PATTERNS = (
    (r"GNU LESSER GENERAL PUBLIC LICENSE", "LGPL-3.0-or-later"),
    (r"GNU AFFERO GENERAL PUBLIC LICENSE", "AGPL-3.0-or-later"),
    (r"GNU GENERAL PUBLIC LICENSE\s+Version 2", "GPL-2.0-or-later"),
    (r"GNU GENERAL PUBLIC LICENSE", "GPL-3.0-or-later"),
    (r"Mozilla Public License,? (v\. |Version )?2\.0", "MPL-2.0"),
    (r"Apache License,?\s+Version 2\.0", "Apache-2.0"),
    (r"PYTHON SOFTWARE FOUNDATION LICENSE", "PSF-2.0"),
    (r"Permission is hereby granted, free of charge", "MIT"),
    (r"Redistribution and use in source and binary forms(.|\n)*(Neither the name|names of its\s+contributors)",
     "BSD-3-Clause"),
    (r"Redistribution and use in source and binary forms", "BSD-2-Clause"),
    (r"Permission to use, copy, modify, and(/or)? distribute this software for any", "ISC"),
    (r"This is free and unencumbered software released into the public domain", "Unlicense"),
)  # fmt: skip


@dataclass(frozen=True)
class License:
    spdx: str  # an SPDX id or expression ("MIT OR Apache-2.0"), or "unknown"
    evidence: str  # where it was read: "LICENSE", "METADATA License-Expression", "classifier", ...


def normalise_name(name: str) -> str | None:
    """An SPDX id or expression for a metadata licence string, or None if it is not recognisable."""
    cleaned = " ".join(name.split())
    if not cleaned or cleaned.upper() == "UNKNOWN":
        return None
    if cleaned.lower() in _NAME_TO_SPDX:
        return _NAME_TO_SPDX[cleaned.lower()]
    try:  # SPDX ids only: prose like "BSD License" has unknown keys
        return str(_spdx().parse(cleaned, validate=True))
    except ExpressionError:
        return None


@functools.cache
def _spdx():
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def from_text(text: str) -> str | None:
    """The licence whose phrase comes first: bundles append their dependencies' licences after their own."""
    found = []
    for order, (pattern, spdx) in enumerate(_TEXT_PATTERNS):
        if match := re.search(pattern, text[:50_000], flags=re.IGNORECASE):
            found.append((match.start(), order, spdx))
    return min(found)[2] if found else None


def from_classifiers(classifiers: list[str]) -> str | None:
    names = [c.split("::")[-1].strip() for c in classifiers if c.startswith("License ::") and c.count("::") >= 2]
    ids = sorted({spdx for name in names if (spdx := normalise_name(name))})
    return " OR ".join(ids) if ids else None  # several classifiers mean the user may choose


def from_metadata(metadata, license_texts: list[str]) -> License:
    """The licence of an installed distribution from its METADATA fields and its bundled licence files."""
    expression = metadata.get("License-Expression")
    if expression and (spdx := normalise_name(expression)):
        return License(spdx, "METADATA License-Expression")
    field = metadata.get("License") or ""
    if spdx := normalise_name(field):
        return License(spdx, "METADATA License")
    if spdx := from_classifiers(metadata.get_all("Classifier") or []):
        return License(spdx, "METADATA classifier")
    for text in [field, *license_texts]:  # some packages paste the whole licence into the License field
        if spdx := from_text(text):
            return License(spdx, "bundled licence file")
    return License(UNKNOWN, "no licence metadata")


def from_directory(root: Path) -> License:
    """The licence of a repository or folder from its LICENSE file, else pyproject.toml or package.json."""
    for name in LICENSE_FILE_NAMES:
        path = root / name
        if path.is_file() and (spdx := from_text(path.read_text(encoding="utf-8", errors="replace"))):
            return License(spdx, name)
    if (spdx := _from_pyproject(root / "pyproject.toml")) is not None:
        return License(spdx, "pyproject.toml")
    if (spdx := _from_package_json(root / "package.json")) is not None:
        return License(spdx, "package.json")
    return License(UNKNOWN, "no LICENSE file or package metadata")


def _from_pyproject(path: Path) -> str | None:
    if not path.is_file():
        return None
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib

    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    value = project.get("license")
    if isinstance(value, dict):
        value = value.get("text")
    return normalise_name(value) if isinstance(value, str) else None


def _from_package_json(path: Path) -> str | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("license")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    return normalise_name(value) if isinstance(value, str) else None


def is_allowed(spdx: str, allowed: set[str]) -> bool:
    """True if the expression can be satisfied using only allowed licences (OR: any branch; AND: all parts).

    `X WITH exception` counts as X: the exceptions in use (LLVM-exception, Classpath...) only add permissions.
    """
    if spdx == UNKNOWN:
        return False
    try:
        expression = _spdx().parse(spdx, validate=True)
    except ExpressionError:
        return False
    return _satisfiable(expression, {name.lower() for name in allowed})


def _satisfiable(expression, allowed: set[str]) -> bool:
    if isinstance(expression, LicenseWithExceptionSymbol):
        return expression.license_symbol.key.lower() in allowed
    if isinstance(expression, LicenseSymbol):
        return expression.key.lower() in allowed
    if isinstance(expression, OR):
        return any(_satisfiable(part, allowed) for part in expression.args)
    if isinstance(expression, AND):
        return all(_satisfiable(part, allowed) for part in expression.args)
    return False
