"""Fixtures for the language server tests; the session helpers are in lsp_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return (tmp_path / "calc.py").as_uri()
