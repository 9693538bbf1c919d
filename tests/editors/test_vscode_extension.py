"""The VS Code extension's own checks through npm: `tsc --noEmit`, its unit tests (node's test runner, no VS Code
needed) and the .vsix packaging. They need the npm dependencies (`make -C editors deps` or `npm ci` in
editors/vscode); without them the tests are skipped with that instruction."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[2] / "editors" / "vscode"

pytestmark = [
    pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed (Node 20 is needed)"),
    pytest.mark.skipif(
        not (EXTENSION / "node_modules" / ".bin" / "tsc").exists(),
        reason="the extension's npm dependencies are not installed: run `npm ci` in editors/vscode",
    ),
]


def npm(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["npm", *args], cwd=EXTENSION, capture_output=True, text=True, timeout=timeout)


def test_typescript_compiles_in_strict_mode():
    result = npm("run", "typecheck")
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_pass():
    result = npm("test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout


@pytest.mark.slow
def test_package_builds_a_vsix_with_the_bundle_and_the_contributions(tmp_path):
    result = npm("run", "package")
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(EXTENSION / "mimo-code.vsix") as vsix:
        names = set(vsix.namelist())
        manifest = json.loads(vsix.read("extension/package.json"))
    assert "extension/dist/extension.js" in names
    assert not any(name.startswith("extension/node_modules/") or name.startswith("extension/src/") for name in names)
    commands = {command["command"] for command in manifest["contributes"]["commands"]}
    assert {"mimo.toggle", "mimo.triggerCompletion", "mimo.reviewChanges"} <= commands
