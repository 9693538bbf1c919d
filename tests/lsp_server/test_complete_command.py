"""`mimo complete` follows the editor's language rule (the model card's languages, `--any-language` to override)
and never writes the model's control characters raw to a terminal; `--json` stays exact JSON."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

import pytest
from fake_openai import fake_openai, serving
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from engine.api import EngineInfo
from lsp_server.documents import Document
from lsp_server.shell import ShellError, check_language, pipe_text, terminal_json, terminal_text
from mimo.cli import app

GO = 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println(\n}\n'
HOSTILE = "'\x1bc\r\x9b2Jhi\x07\u202e'"  # what fake_openai answers after `    banner = `
BANNER = "def show():\n    banner = \n    print(banner)\n"


class _Carded:
    """An engine whose card lists languages (the Engine protocol is our boundary; only info() is asked)."""

    def __init__(self, languages: tuple[str, ...] | None):
        self.languages = languages

    def info(self) -> EngineInfo:
        return EngineInfo(
            model="carded", backend="test", context_length=512, fim_template=None, languages=self.languages
        )


@pytest.mark.parametrize(
    ("language", "card", "settings", "allowed"),
    [
        ("python", ("python",), {}, True),
        ("go", ("python",), {}, False),
        ("go", ("python",), {"*": True}, True),  # --any-language
        ("go", ("python",), {"go": True}, True),
        ("python", ("python",), {"python": False}, False),
        ("go", None, {}, True),  # no card (a remote server, a Hugging Face model): every language
        (None, ("python",), {}, False),  # a file we have no grammar for is no language the card lists
    ],
)
def test_check_language_is_the_editors_rule(language, card, settings, allowed):
    document = Document("file:///x", language, "x")
    if allowed:
        check_language(document, _Carded(card), settings)
    else:
        with pytest.raises(ShellError, match="does not complete"):
            check_language(document, _Carded(card), settings)


def test_complete_refuses_a_language_the_cards_model_was_not_trained_on_unless_told(tmp_path):
    """The shipped nano's card lists Python only: Go is refused with the way to override it, then completed."""
    source = tmp_path / "main.go"
    source.write_text(GO)
    args = ["complete", str(source), "--line", "6", "--col", "14", "--model", "nano"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2, refused.output
    assert "trained on python only" in refused.output and "--any-language" in refused.output
    assert "Traceback" not in refused.output
    allowed = CliRunner().invoke(app, [*args, "--any-language", "--json"])
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.stdout.strip().splitlines()[-1])["language"] == "go"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("x = 1\n    y", "x = 1\n    y"),  # line feeds and tabs stay
        ("\x1b[2J\x1b]0;t\x07", "\\x1b[2J\\x1b]0;t\\x07"),
        ("abc\rxyz", "abc\\rxyz"),
        ("\x9b2J", "\\x9b2J"),  # CSI in its 8-bit form
        ("if a\u202e:", "if a\\u202e:"),  # a right-to-left override
        ("a\u2028b", "a\\u2028b"),
        ("\ud800", "\\ud800"),  # a lone surrogate: not even encodable as UTF-8
        ("naïve 你好 🙂", "naïve 你好 🙂"),  # printable text is left alone
    ],
)
def test_terminal_text_escapes_control_characters(text, shown):
    assert terminal_text(text) == shown


@given(st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=4))
def test_terminal_json_is_the_same_json_value_and_holds_no_control_character(value):
    encoded = terminal_json(json.dumps(value, ensure_ascii=False))
    assert json.loads(encoded) == value
    assert terminal_text(encoded) == encoded  # nothing left for a terminal to act on


def test_piped_text_is_exact_but_for_what_utf8_cannot_carry():
    assert pipe_text("'\x1bc\r\x9b2J'\u202e") == "'\x1bc\r\x9b2J'\u202e"
    assert pipe_text("a\ud800b").encode("utf-8") == "a\ufffd\ufffd\ufffdb".encode()  # one per byte of it


def _run_on_a_terminal(args: list[str]) -> bytes:
    """``args`` with stdout on a pseudo-terminal (isatty() is true, as in a shell): everything it wrote there."""
    leader, follower = pty.openpty()
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(args, stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    written = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 300)
            if not ready:
                raise TimeoutError("mimo complete wrote nothing for 300 s")
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the follower side closed: the process is done
                break
            if not chunk:
                break
            written += chunk
    finally:
        process.wait(timeout=300)
        os.close(leader)
    assert process.returncode == 0, process.stderr.read().decode()
    return written


@pytest.mark.slow
def test_the_models_escape_sequences_reach_a_terminal_escaped_and_a_pipe_exact(tmp_path):
    source = tmp_path / "show.py"
    source.write_text(BANNER)
    with serving(fake_openai("polite")) as url:
        args = [sys.executable, "-m", "mimo.cli", "complete", str(source), "--line", "2", "--col", "14"]
        args += ["--url", url, "--prompt-mode", "chat"]
        on_terminal = _run_on_a_terminal(args)
        env = os.environ | {"OMP_NUM_THREADS": "1"}
        piped = subprocess.run(args, capture_output=True, env=env, timeout=300, check=True)
        as_json = subprocess.run([*args, "--json"], capture_output=True, env=env, timeout=300, check=True)
    raw = on_terminal.replace(b"\r\n", b"\n")  # the terminal turns each line feed into CR LF
    assert not any(control in raw for control in (b"\x1b", b"\r", b"\x07", "\x9b".encode(), "\u202e".encode()))
    assert "\\x1bc\\r\\x9b2Jhi\\x07\\u202e" in on_terminal.decode()
    assert piped.stdout.decode() == HOSTILE + "\n"  # exact when a program reads it
    payload = as_json.stdout.decode().strip()
    assert json.loads(payload)["text"] == HOSTILE and terminal_text(payload) == payload
