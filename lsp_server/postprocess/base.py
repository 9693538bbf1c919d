"""What every post-processing filter sees, and the filter type.

A filter takes the completion text so far and the context around the cursor, and returns the cleaned text,
or None to drop the candidate. Filters are pure, small and tested one by one against golden cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lsp_server.local_syntax import LocalSyntax


@dataclass(frozen=True)
class FilterContext:
    prefix: str  # the whole document before the cursor
    suffix: str  # the whole document after the cursor
    language: str | None  # a language we can parse, else None
    multiline: bool
    max_lines: int = 12
    syntax: LocalSyntax | None = None  # the syntax around the cursor, when the caller has it (a local check)
    language_id: str = ""  # the editor's language id, also when there is no grammar ("ruby": `language` None)

    @property
    def line_before(self) -> str:
        """The cursor line's text before the cursor."""
        return self.prefix[self.prefix.rfind("\n") + 1 :]

    @property
    def line_after(self) -> str:
        """The cursor line's text after the cursor."""
        end = self.suffix.find("\n")
        return self.suffix if end == -1 else self.suffix[:end]

    def lines_after(self, count: int) -> list[str]:
        """The ``count`` lines after the cursor line (without reading the whole suffix)."""
        lines = []
        start = self.suffix.find("\n")
        while start != -1 and len(lines) < count:
            end = self.suffix.find("\n", start + 1)
            lines.append(self.suffix[start + 1 : end if end != -1 else len(self.suffix)])
            start = end
        return lines


Filter = Callable[[str, FilterContext], "str | None"]


def indent_of(line: str) -> int:
    """Indentation width, a tab counting as four columns."""
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())
