"""Completion prompt modes (fim, prefix, chat): the default per model family, the chat contract, and the whole
completion pipeline at the HTTP boundary against a fake OpenAI-compatible server that answers like an
instruction model, a reasoning model or a base model would; `mimo complete` sends the API key and the mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fake_openai import GAP, fake_openai, serving

from engine.api import EngineInfo, FimParts
from engine.formats import default_prompt_mode
from engine.remote import RemoteEngine
from lsp_server.prompt_modes import chat_answer, chat_messages, completion_mode
from lsp_server.settings import CompletionSettings, Settings, settings_from_options
from lsp_server.shell import ShellError, complete_in_file, load_document


def info(model: str, template: str | None, prompt_mode: str | None = None) -> EngineInfo:
    return EngineInfo(
        model=model, backend="remote", context_length=8192, fim_template=template, prompt_mode=prompt_mode
    )


@pytest.mark.parametrize(
    ("engine", "mode"),
    [
        (info("nano", "mimo-code"), "fim"),  # our models are trained on FIM
        (info("MiMo-7B-Base", "qwen"), "prefix"),  # FIM tokens in the tokenizer, no FIM training reported
        (info("MiMo-7B-RL", "qwen"), "prefix"),
        (info("Qwen2.5-Coder-7B", "qwen"), "fim"),  # its card documents FIM training
        (info("starcoder2-3b", "starcoder"), "fim"),
        (info("llama-base", None), "prefix"),
        (info("MiMo-7B-Base", "qwen", prompt_mode="chat"), "chat"),  # the deployment said so
    ],
)
def test_the_default_mode_follows_the_model_family_or_the_deployment(engine, mode):
    assert default_prompt_mode(engine) == mode
    assert completion_mode("auto", engine) == mode
    assert completion_mode("fim", engine) == "fim"  # a setting wins


def test_settings_take_the_mode_and_the_key_and_hide_the_key():
    settings, problems = settings_from_options(
        {"engine": {"url": "http://gpu:8000", "apiKey": "sk-123"}, "completion": {"promptMode": "chat"}}
    )
    assert problems == [] and settings.completion.prompt_mode == "chat" and settings.engine.api_key == "sk-123"
    assert "sk-123" not in repr(settings)
    _, problems = settings_from_options({"completion": {"promptMode": "infill"}})
    assert len(problems) == 1 and "promptMode" in problems[0]


FIM = FimParts(prefix="def add(a, b):\n    return ", suffix="\n\nprint(add(1, 2))\n", header="# Path: m.py\n")


def test_the_chat_request_shows_the_gap_inside_a_fence_longer_than_any_in_the_code():
    fim = FimParts(prefix='DOC = """\n```\n"""\nx = ', suffix="\n")
    system, user = chat_messages(fim, "python", multiline=False, max_lines=12)
    assert system.role == "system" and GAP in system.content
    assert "````python\n" in user.content and f"x = {GAP}\n" in user.content and "rest of that line" in user.content


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Here you go:\n```python\na + b\n```\nDone.", "a + b"),
        ("<think>maybe ```python\nwrong\n```</think>\n```python\na + b\n```", "a + b"),
        ("```python\n    return a + b\n```", "a + b"),  # the line before the gap, repeated
        ("```\na + b\n\n\nprint(add(1, 2))\n```", "a + b"),  # the code after the gap, repeated
        ("```python\na + b", "a + b"),  # cut off by max tokens before the closing fence
        ("a + b", None),  # no code block: the contract is broken
        (f"```python\nreturn {GAP}\n```", None),
        ("<think>a + b", None),  # still thinking
        ("```python\n\n```", None),
    ],
)
def test_the_chat_contract(reply, expected):
    assert chat_answer(reply, FIM) == expected


SOURCE = "def add(a, b):\n    return \n\n\nprint(add(1, 2))\n"


async def complete_with(url: str, tmp_path, prompt_mode: str, **remote_options) -> str:
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    engine = RemoteEngine(url, connect_retries=0, fim_template="qwen", **remote_options)
    settings = Settings(completion=CompletionSettings(prompt_mode=prompt_mode))
    try:
        return (await complete_in_file(engine, path, 2, 12, settings)).text
    finally:
        await engine.aclose()


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        ("polite", "a + b"),
        ("thinking", "a + b"),
        ("echo_line", "a + b"),
        ("echo_suffix", "a + b"),
        ("bad_syntax", ""),  # dropped by the syntax check, like any other candidate
        ("no_fence", ""),
        ("gap_echo", ""),
    ],
)
async def test_chat_mode_through_http_and_the_pipeline(tmp_path, behaviour, expected):
    app = fake_openai(behaviour)
    with serving(app) as url:
        text = await complete_with(url, tmp_path, "chat")
    assert text == expected
    body = app.state.bodies[-1]
    assert [m["role"] for m in body["messages"]] == ["system", "user"] and "stop" not in body


async def test_prefix_mode_sends_no_suffix_and_no_fim_tokens_and_cuts_the_run_on(tmp_path):
    app = fake_openai()
    with serving(app) as url:
        text = await complete_with(url, tmp_path, "prefix")
    body = app.state.bodies[-1]
    assert (
        "suffix" not in body
        and "<|fim" not in body["prompt"]
        and body["prompt"].endswith("def add(a, b):\n    return ")
    )
    assert text == "a + b"  # the base model ran on into the next function; single-line mode keeps its line


async def test_auto_mode_follows_what_the_server_advertises(tmp_path):
    app = fake_openai(prompt_mode="chat")
    with serving(app) as url:
        text = await complete_with(url, tmp_path, "auto")
    assert text == "a + b" and "messages" in app.state.bodies[-1]


async def test_auto_mode_for_a_qwen_family_model_without_fim_training_is_prefix(tmp_path):
    app = fake_openai()  # serves "fake-instruct" and says nothing about its prompt mode
    with serving(app) as url:
        await complete_with(url, tmp_path, "auto")
    assert "prompt" in app.state.bodies[-1] and "suffix" not in app.state.bodies[-1]


@pytest.mark.parametrize(
    ("target", "what"), [(".", "is a directory"), ("/dev/null", "is a character device"), ("fifo", "named pipe")]
)
def test_complete_names_what_a_path_is_when_it_is_not_a_file(tmp_path, target, what):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = tmp_path / target if target != "/dev/null" else target
    with pytest.raises(ShellError, match=what):
        load_document(__import__("pathlib").Path(path))


@pytest.mark.slow
def test_mimo_complete_sends_the_key_and_the_mode(tmp_path):
    key = "sk-fake-42"
    app = fake_openai("polite", api_key=key)
    path = tmp_path / "m.py"
    path.write_text(SOURCE)
    with serving(app) as url:
        args = [sys.executable, "-m", "mimo.cli", "complete", str(path), "--line", "2", "--col", "12", "--url", url]
        result = subprocess.run(
            [*args, "--prompt-mode", "chat", "--json"],
            env={**os.environ, "MIMO_API_KEY": key, "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        unkeyed = subprocess.run(
            [*args, "--prompt-mode", "chat", "--json"],
            env={k: v for k, v in os.environ.items() if k != "MIMO_API_KEY"} | {"OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["text"] == "a + b"
    assert key not in result.stderr
    # Without the key the server refuses; the local fallback (nano) answers instead, in its own FIM mode.
    assert unkeyed.returncode == 0 and len(app.state.bodies) == 1


@pytest.mark.slow
@pytest.mark.parametrize("key_from", ["setting", "environment"])
async def test_the_language_server_sends_the_key_and_follows_the_servers_mode(
    tmp_path, uri, tiny_model_dir, monkeypatch, key_from
):
    """Through the real server over stdio: a keyed remote that advertises chat mode answers the ghost text."""
    from lsp_helpers import inline, lsp_session, open_document

    key = "sk-editor-7"
    app = fake_openai("polite", api_key=key, prompt_mode="chat")
    with serving(app) as url:
        engine = {"model": str(tiny_model_dir), "threads": 1, "url": url}
        if key_from == "setting":
            engine["apiKey"] = key
        else:
            monkeypatch.setenv("MIMO_API_KEY", key)  # the server process inherits it
        options = {"engine": engine, "completion": {"debounceMs": 0, "maxDebounceMs": 0}, "telemetry": False}
        async with lsp_session(options) as client:
            open_document(client, uri, SOURCE)
            items = await inline(client, uri, 1, 11)
    assert items == ["a + b"]
    assert "messages" in app.state.bodies[-1]  # asked in chat mode, as the server advertised
