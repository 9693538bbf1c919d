"""Drop the loops small models fall into:

- lines that repeat: one line three or more times in a row, or a block of two to four lines twice in a row
  (one copy is kept). The first line is compared with the text before the cursor in front of it, as it will
  stand in the file: nano wrote `const uint8* ret = 0;` twelve times into a Go function, and the first copy,
  which lacked the tab before the cursor, did not match the rest, so two copies got through (and `const uint8*
  ret = 0;` is valid Go: a constant named uint8 of type *ret, so the syntax check had nothing to object to);
- a line in which a piece of two to sixteen characters (not all one character) repeats MIN_UNIT_COPIES times
  in a row (`5.0, 5.0, 5.0, …` in a Rust comment, `0, 0, 0, …` in a call): a comment is always valid syntax,
  so only this catches it; the line and all after it are dropped;
- a completion that is one character repeated ("________").
"""

from __future__ import annotations

import re

from lsp_server.postprocess.base import FilterContext

LOOP_COPIES = 3  # this many consecutive copies of a line are a loop, not code
MAX_BLOCK_LINES = 4  # blocks of 2..4 lines repeated twice in a row are a loop too
MIN_DEGENERATE_RUN = 8
MIN_UNIT_COPIES = 6  # a short piece repeated this many times in a row within a line
_REPEATED_UNIT = re.compile(r"(\S.{1,15}?)\1{%d,}" % (MIN_UNIT_COPIES - 1))
_MIN_BLOCK_CHARS = 4  # a block of only `}` or `end` lines repeats legitimately


def repetition(text: str, context: FilterContext) -> str | None:
    body = text.strip()
    if len(body) >= MIN_DEGENERATE_RUN and len(set(body)) == 1:
        return None
    lines = text.split("\n")
    placed = [context.line_before + lines[0], *lines[1:]]  # as the lines will stand in the file
    looping = next((index for index, line in enumerate(placed) if _has_unit_loop(line)), None)
    if looping is not None:
        lines, placed = lines[:looping], placed[:looping]
        if not lines:
            return None
    loop_start = _first_loop(placed)
    if loop_start is not None:
        lines = lines[:loop_start]
    return "\n".join(lines) if lines else None


def _has_unit_loop(line: str) -> bool:
    """A piece of at least two different characters repeated MIN_UNIT_COPIES times in a row (a rule of one
    character, `# ------` or `0xFFFFFFFF`, is code people write)."""
    return any(len(set(match[1])) > 1 for match in _REPEATED_UNIT.finditer(line))


def _first_loop(lines: list[str]) -> int | None:
    """Where the second copy of the first repeated line or block starts, or None."""
    for index in range(len(lines)):
        for size in range(1, MAX_BLOCK_LINES + 1):
            block = lines[index : index + size]
            if len(block) < size or sum(len(line.strip()) for line in block) < _MIN_BLOCK_CHARS:
                continue
            copies = LOOP_COPIES if size == 1 else 2
            if all(lines[index + size * copy : index + size * (copy + 1)] == block for copy in range(1, copies)):
                return index + size
    return None
