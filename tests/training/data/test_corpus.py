"""The offline corpus: the standard library and installed distributions, each with its licence."""

from __future__ import annotations

import pytest

from training.data.collect import list_files
from training.data.corpus import installed_sources, resolve_installed, stdlib_source
from training.errors import UserError


def test_stdlib_is_psf_licensed_and_lists_its_modules():
    source = stdlib_source()
    assert source.license.spdx == "PSF-2.0"
    files = list_files(source)
    assert "os.py" in files and "json/decoder.py" in files
    assert not any(path.startswith("site-packages/") for path in files)


def test_installed_distribution_lists_its_recorded_code_and_licence():
    (typer,) = installed_sources(["Typer"])
    assert typer.name.startswith("typer-")
    assert typer.license.spdx == "MIT"
    assert "typer/main.py" in typer.files
    assert all(not path.startswith("..") and ".dist-info/" not in path for path in typer.files)
    assert (typer.root / "typer" / "main.py").is_file()


def test_installed_spec_and_unknown_name():
    assert resolve_installed("installed:stdlib")[0].license.spdx == "PSF-2.0"
    with pytest.raises(UserError, match="no installed distribution with code named no-such-dist"):
        resolve_installed("installed:no_such_dist")
