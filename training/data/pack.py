"""Repository packing: a source's files in import-dependency order as one document (DeepSeek-Coder's recipe),
with Qwen2.5-Coder's repository format:

    <|repo_name|>NAME
    <|file_sep|>PATH
    CONTENT
    <|file_sep|>PATH
    ...

A file comes after the files it imports, so the model sees definitions before their uses. Import cycles are
tolerated: when every remaining file still waits on another, the one waiting on the fewest goes next.
Imports are read with regexes (no parsing, so broken files still pack) for Python, Java, JavaScript/TypeScript
and C/C++ (quoted includes); other languages keep path order.
"""

from __future__ import annotations

import heapq
import posixpath
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from engine.special_tokens import FILE_SEP, REPO_NAME
from training.data.collect import Document
from training.data.fim import Segments, Special

_PY_IMPORT = re.compile(r"^[ \t]*import[ \t]+([\w., \t]+)", re.MULTILINE)
_PY_FROM = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+\(?([\w., \t\n]+)", re.MULTILINE)
_JAVA_IMPORT = re.compile(r"^\s*import\s+(?:static\s+)?([\w.]+)\s*;", re.MULTILINE)
_JS_IMPORT = re.compile(r"""(?:\bfrom\s*|\brequire\s*\(\s*|\bimport\s*\(?\s*)["'](\.{1,2}/[^"']+)["']""")
_C_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)
_JS_EXTENSIONS = ("", ".ts", ".tsx", ".js", ".jsx", ".mjs", "/index.ts", "/index.js")


@dataclass
class Block:
    """A piece of a packed document; `document` is None for the repository header."""

    document: Document | None
    segments: Segments


def pack_repository(name: str, documents: list[Document], body: Callable[[Document], Segments]) -> list[Block]:
    """The header block then one block per file in import order; `body` gives a file's content segments
    (its text, or its FIM transform)."""
    by_path = {document.path: document for document in documents}
    order = import_order(dependency_graph(documents))
    blocks = [Block(None, [Special(REPO_NAME), f"{name}\n"])]
    for path in order:
        document = by_path[path]
        blocks.append(Block(document, [Special(FILE_SEP), f"{path}\n", *body(document), "\n"]))
    return blocks


def import_order(dependencies: dict[str, set[str]]) -> list[str]:
    """Every file after its dependencies where possible; in a cycle the file with fewest unplaced ones first.
    Ties break by path, so the order is deterministic."""
    dependents: dict[str, set[str]] = defaultdict(set)
    for path, needs in dependencies.items():
        for need in needs:
            dependents[need].add(path)
    waiting = {path: len(needs) for path, needs in dependencies.items()}
    heap = [(count, path) for path, count in waiting.items()]
    heapq.heapify(heap)
    placed: set[str] = set()
    order = []
    while heap:
        count, path = heapq.heappop(heap)
        if path in placed or count != waiting[path]:
            continue  # a stale entry: the count has dropped since it was pushed
        placed.add(path)
        order.append(path)
        for dependent in dependents[path] - placed:
            waiting[dependent] -= 1
            heapq.heappush(heap, (waiting[dependent], dependent))
    return order


def dependency_graph(documents: list[Document]) -> dict[str, set[str]]:
    """path -> the paths (within these documents) it imports."""
    modules = _module_index(documents)
    paths = {document.path for document in documents}
    graph = {}
    for document in documents:
        needs = set(_resolve(document, modules, paths)) - {document.path}
        graph[document.path] = needs
    return graph


def _module_index(documents: list[Document]) -> dict[str, str]:
    """Dotted module name -> path for Python and Java files; also every dotted suffix ("src.pkg.mod" is also
    "pkg.mod" and "mod") so src/ layouts resolve. Full names win over suffixes; shallower files over deeper."""
    dotted = [d for d in documents if d.language in ("python", "cython", "java")]
    index: dict[str, str] = {}
    for document in sorted(dotted, key=lambda d: (d.path.count("/"), d.path), reverse=True):
        parts = _module_parts(document.path)
        for start in range(1, len(parts)):
            index[".".join(parts[start:])] = document.path
    for document in dotted:  # full names last, so no suffix of another file shadows them
        index[".".join(_module_parts(document.path))] = document.path
    return index


def _module_parts(path: str) -> list[str]:
    """ "pkg/sub/__init__.py" -> ["pkg", "sub"]; "pkg/mod.py" -> ["pkg", "mod"]."""
    parts = path.rsplit(".", 1)[0].split("/")
    return parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts


def _resolve(document: Document, modules: dict[str, str], paths: set[str]) -> list[str]:
    text, path = document.text, document.path
    if document.language in ("python", "cython"):
        return [modules[name] for name in _python_imports(text, path) if name in modules]
    if document.language == "java":
        return [modules[name] for name in _JAVA_IMPORT.findall(text) if name in modules]
    if document.language in ("javascript", "typescript"):
        return [found for spec in _JS_IMPORT.findall(text) if (found := _resolve_relative(path, spec, paths))]
    if document.language in ("c", "cpp"):
        return [found for include in _C_INCLUDE.findall(text) if (found := _resolve_include(path, include, paths))]
    return []


def _python_imports(text: str, path: str) -> list[str]:
    names = []
    for group in _PY_IMPORT.findall(text):
        names += [item.split()[0] for item in group.split(",") if item.strip()]
    package = _package_of(path)
    for dots, module, imported in _PY_FROM.findall(text):
        base = _relative_base(package, len(dots)) if dots else ""
        full = ".".join(part for part in (base, module) if part)
        names.append(full)
        # `from pkg import mod` may name a submodule
        names += [f"{full}.{item.split()[0]}" for item in imported.replace("\n", ",").split(",") if item.split()]
    return names


def _package_of(path: str) -> str:
    return posixpath.dirname(path).replace("/", ".")


def _relative_base(package: str, level: int) -> str:
    parts = package.split(".") if package else []
    return ".".join(parts[: max(0, len(parts) - (level - 1))])


def _resolve_relative(path: str, spec: str, paths: set[str]) -> str | None:
    target = posixpath.normpath(posixpath.join(posixpath.dirname(path), spec))
    return next((target + ext for ext in _JS_EXTENSIONS if target + ext in paths), None)


def _resolve_include(path: str, include: str, paths: set[str]) -> str | None:
    beside = posixpath.normpath(posixpath.join(posixpath.dirname(path), include))
    if beside in paths:
        return beside
    matches = sorted(candidate for candidate in paths if candidate.endswith("/" + include) or candidate == include)
    return matches[0] if matches else None
