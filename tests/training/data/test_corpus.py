"""The offline corpus: the standard library and installed distributions, each with its licence."""

from __future__ import annotations

import pytest

from training.data.collect import list_files
from training.data.corpus import installed_sources, resolve_installed, resolve_specs, stdlib_source
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


def test_from_installed_lists_stdlib_first_then_distributions(tmp_path):
    sources = resolve_specs([f"mine={tmp_path}"], from_installed=True)
    assert sources[0].name.startswith("python-stdlib-")
    assert any(source.name.startswith("typer-") for source in sources)
    assert sources[-1].name == "mine" and sources[-1].license is None  # read from the folder at build time
    assert len({source.name for source in sources}) == len(sources)
