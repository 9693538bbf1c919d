"""What every post-processing filter sees, and the filter type.

A filter takes the completion text so far and the context around the cursor, and returns the cleaned text,
or None to drop the candidate. Filters are pure, small and tested one by one against golden cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class FilterContext:
    prefix: str  # the whole document before the cursor
    suffix: str  # the whole document after the cursor
    language: str | None  # a language we can parse, else None
    multiline: bool
    max_lines: int = 12

    @property
    def line_before(self) -> str:
        """The cursor line's text before the cursor."""
        return self.prefix[self.prefix.rfind("\n") + 1 :]

    @property
    def line_after(self) -> str:
        """The cursor line's text after the cursor."""
        end = self.suffix.find("\n")
        return self.suffix if end == -1 else self.suffix[:end]


Filter = Callable[[str, FilterContext], "str | None"]


def indent_of(line: str) -> int:
    """Indentation width, a tab counting as four columns."""
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())
