"""The VS Code extension's own checks through npm: `tsc --noEmit`, its unit tests (node's test runner, no VS Code
needed), the .vsix packaging, and the end-to-end run in code-server with Chromium. `make setup` installs what they
need (the npm dependencies, code-server, Chromium); without it they fail with that instruction, never skip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parents[2] / "editors" / "vscode"


@pytest.fixture(autouse=True)
def _installed() -> None:
    """`make setup` installs Node's packages; without them these tests fail (never skip) and say what to run."""
    assert shutil.which("npm"), "npm is not installed (Node 20 is needed): run `make setup`"
    assert (EXTENSION / "node_modules" / ".bin" / "tsc").exists(), "no npm packages in editors/vscode: `make setup`"


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


# Where `make setup` (scripts/editor-tools.sh) installs code-server and playwright-core.
E2E_DIR = Path(os.environ.get("MIMO_E2E_DIR") or EXTENSION.parents[1] / ".cache" / "editors" / "code-server")


@pytest.mark.slow
@pytest.mark.e2e
def test_end_to_end_in_code_server_ghost_text_tab_and_quick_fix():
    """The end-to-end script (about a minute once set up): real VS Code host, real extension, real server,
    Chromium; the API key set with "MiMo: Set API key" reaches a keyed OpenAI-compatible engine."""
    assert (E2E_DIR / "node_modules" / ".bin" / "code-server").exists(), f"no code-server in {E2E_DIR}: make setup"
    assert shutil.which("chromium"), "no Chromium for the end-to-end run: make setup"
    assert npm("run", "package").returncode == 0
    env = {**os.environ, "MIMO_E2E_DIR": str(E2E_DIR), "MIMO_PYTHON": sys.executable}
    result = subprocess.run(
        ["node", "e2e/run.mjs"], cwd=EXTENSION, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Tab accepted the completion" in result.stderr
    assert "quick fix applied" in result.stderr
    assert "API key set: the keyed engine answered" in result.stderr  # secret storage -> server -> keyed engine


def test_every_setting_the_extension_sends_is_one_the_server_accepts(tmp_path):
    """The options object built from package.json's defaults, read by the server's own settings parser."""
    from lsp_server.settings import settings_from_options

    bundle = tmp_path / "settings.js"
    esbuild = ["esbuild", "src/settings.ts", "--bundle", "--format=cjs", "--platform=node", f"--outfile={bundle}"]
    result = npm("exec", "--", *esbuild)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((EXTENSION / "package.json").read_text())
    defaults = {
        key.removeprefix("mimo."): spec["default"]
        for key, spec in manifest["contributes"]["configuration"]["properties"].items()
    }
    changed = defaults | {"completion.promptMode": "chat"}

    def options_for(values: dict, secrets: dict) -> dict:
        script = (
            f"const s = require({json.dumps(str(bundle))}); const d = {json.dumps(values)};"
            f"const o = s.serverOptions((k, f) => (k in d ? d[k] : f), {json.dumps(secrets)});"
            "process.stdout.write(JSON.stringify(o));"
        )
        return json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout)

    settings, problems = settings_from_options(options_for(defaults, {}))
    assert problems == []
    assert settings.engine.model == "nano" and settings.completion.multi_line_tokens == 192
    assert settings.engine.api_key is None and settings.completion.prompt_mode == "auto"
    # A key from VS Code's secret storage and a prompt mode reach the server's settings as they are.
    settings, problems = settings_from_options(options_for(changed, {"apiKey": "sk-stored-1"}))
    assert problems == []
    assert settings.engine.api_key == "sk-stored-1" and settings.completion.prompt_mode == "chat"
