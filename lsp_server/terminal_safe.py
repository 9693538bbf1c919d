"""Characters that must not reach a terminal or a rendered page raw, and the escape each is shown as.

Shared by `mimo complete` (model text on a terminal) and `mimo review` (changed lines, file names and the
model's words in the text report and GitHub annotations)."""

from __future__ import annotations

import re

# C0 controls but tab and line feed, DEL and the C1 controls: an escape sequence would clear the screen or retitle
# the window, a carriage return print over what came before.
CONTROLS = r"\x00-\x08\x0b-\x1f\x7f-\x9f"
# Bidirectional formatting characters: embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069) and
# the invisible marks. A line holding them shows its text in another order than a compiler reads it ("Trojan
# Source", CVE-2021-42574), so a reader would see code that is not there.
BIDI = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"


def escaped(character: re.Match[str]) -> str:
    """A matched character as its Python escape: `\\x1b`, `\\u202e`."""
    return character[0].encode("unicode_escape").decode("ascii")
