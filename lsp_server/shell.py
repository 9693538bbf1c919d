"""`mimo complete`: the editor's completion pipeline (same context, engine call and post-processing) run once
on a file from the shell."""

from __future__ import annotations

import asyncio
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.api import Engine
from lsp_server import context as ctx
from lsp_server import language_policy
from lsp_server.completion import CompletionService, decide_mode
from lsp_server.documents import Document
from lsp_server.safe_files import read_import
from lsp_server.settings import Settings
from lsp_server.syntax import language_for_path
from lsp_server.terminal_safe import BIDI, CONTROLS, escaped


class ShellError(ValueError):
    """Bad input from the command line; the message says what to change."""


@dataclass(frozen=True)
class ShellCompletion:
    path: str
    line: int  # 1-based, as given
    column: int
    language: str | None
    multiline: bool | None  # None: no completion is attempted at this position (inside a word)
    text: str
    latency_ms: float


MAX_FILE_BYTES = 8 * 1024 * 1024  # far beyond source files; a bigger one is a log or data, not code to complete
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def load_document(path: Path) -> Document:
    """The file as a document; a ShellError that says what ``path`` is when it is not a readable text file
    (checked before opening it: a FIFO would block the read, a device would never end it)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ShellError(f"{path}: no such file") from None
    except OSError as exc:
        raise ShellError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    kind = next((name for is_kind, name in _KINDS if is_kind(info.st_mode)), None)
    if kind is not None or not stat.S_ISREG(info.st_mode):
        raise ShellError(f"{path} is {kind or 'not a regular file'}; give a source file to complete in")
    if info.st_size > MAX_FILE_BYTES:
        size, limit = info.st_size / 2**20, MAX_FILE_BYTES // 2**20
        raise ShellError(f"{path} is {size:.0f} MiB; files up to {limit} MiB are completed")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ShellError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ShellError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return Document(uri=path.resolve().as_uri(), language=language_for_path(str(path)), text=text)


def cursor_offset(document: Document, line: int, column: int) -> int:
    """The offset of a 1-based line and column (columns count characters, as editors show them)."""
    if not 1 <= line <= document.line_count:
        raise ShellError(f"--line {line} is outside the file (it has {document.line_count} lines; lines start at 1)")
    length = len(document.line(line - 1))
    if not 1 <= column <= length + 1:
        raise ShellError(f"--col {column} is outside line {line} (columns 1..{length + 1})")
    return document.offset_at_row(line - 1) + column - 1


def import_sources(document: Document) -> list[ctx.Source]:
    sources = []
    for candidate in ctx.import_candidates(document.path, document.text, document.language):
        text = read_import(document.path, candidate)  # inside the file's repository, regular files only
        if text is not None:
            sources.append(ctx.Source(candidate, text))
    return sources


ANY_LANGUAGE_FLAG = "--any-language"


def check_language(document: Document, engine: Engine, languages: Mapping[str, bool]) -> None:
    """The editor's rule (language_policy): a model completes only in the languages its card lists, unless
    ``languages`` (the settings, or {"*": True} from --any-language) say otherwise. A ShellError if not."""
    language_id = document.language or ""
    if not language_policy.completes_in(language_id, languages, engine.info()):
        override = f"pass {ANY_LANGUAGE_FLAG}" if language_policy.ANY_LANGUAGE not in languages else None
        raise ShellError(language_policy.why_not(language_id, engine.info(), override or "change the settings"))


async def complete_in_file(engine: Engine, path: Path, line: int, column: int, settings: Settings) -> ShellCompletion:
    document = load_document(path)
    offset = cursor_offset(document, line, column)
    check_language(document, engine, settings.languages)
    service = CompletionService(settings.completion)

    async def get_engine() -> Engine:
        return engine

    mode = decide_mode(document, offset)
    result = await service.complete(get_engine, document, offset, import_sources(document), invoked=True)
    return ShellCompletion(
        path=str(path), line=line, column=column, language=document.language,
        multiline=mode.multiline if mode else None, text=result.text if result else "",
        latency_ms=result.latency_ms if result else 0.0,
    )  # fmt: skip


def run_complete(engine: Engine, path: Path, line: int, column: int, settings: Settings) -> ShellCompletion:
    async def main() -> ShellCompletion:
        try:
            return await complete_in_file(engine, path, line, column, settings)
        finally:
            await engine.aclose()

    return asyncio.run(main())


# Control characters, C1 controls, bidirectional overrides (text that reads differently than it runs) and the
# Unicode line separators; tab and line feed stay, so a multi-line completion still prints as lines.
_UNSAFE = re.compile(rf"[{CONTROLS}{BIDI}\u2028\u2029\ud800-\udfff]")


def terminal_text(text: str) -> str:
    """Model output made safe to print on a terminal: an escape sequence in it would otherwise clear the screen,
    retitle the window or, with a carriage return, print over what came before. Each such character is shown
    as its Python escape (`\\x1b`, `\\u202e`)."""
    return _UNSAFE.sub(escaped, text)


def pipe_text(text: str) -> str:
    """The text exactly, as far as UTF-8 can carry it: a lone surrogate (a server's JSON may send one) becomes
    U+FFFD instead of failing the write."""
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def terminal_json(encoded: str) -> str:
    """JSON text with the same characters written as \\u escapes: the same JSON value, safe on a terminal
    (json.dumps escapes C0 controls but leaves C1 controls, bidi overrides, line separators and lone surrogates
    raw; every character ``_UNSAFE`` matches is in the Basic Multilingual Plane, one \\u escape each)."""
    return _UNSAFE.sub(lambda match: f"\\u{ord(match[0]):04x}", encoded)
