"""The Neovim plugin in real headless Neovims (0.11: popup completion; 0.12: ghost text) with the real language
server attached. Every test runs on both versions unless it names one."""

from __future__ import annotations

import json
import sys

import pytest
from nvim_helpers import REPO, instant_settings, open_attached, setup_plugin, wait_lua

# Each test starts a real Neovim and a real language server (3-15 s on a loaded 2-core machine).
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


# Lua: are completions on for the current buffer, in whichever mode the plugin chose?
COMPLETION_ENABLED = """
    local buf = vim.api.nvim_get_current_buf()
    if require('mimo.completion').mode(require('mimo').config) == 'inline' then
      return vim.lsp.inline_completion.is_enabled({ bufnr = buf })
    end
    return vim.fn.exists('#nvim.lsp.completion_' .. buf) == 1
"""

HAS_INLINE = "return vim.lsp.inline_completion ~= nil"
ON_012 = pytest.mark.parametrize("nvim", ["0.12"], indirect=True)  # ghost text needs vim.lsp.inline_completion


def test_server_attaches_with_the_completion_mode_of_this_neovim(nvim, tmp_path):
    setup_plugin(nvim, tmp_path)
    open_attached(nvim, tmp_path / "calc.py", "def add(a, b):\n    \n")
    mode = nvim.exec_lua("return require('mimo.completion').mode(require('mimo').config)")
    assert nvim.exec_lua(HAS_INLINE) == (nvim.exec_lua("return vim.version().minor") >= 12)
    assert mode == ("inline" if nvim.exec_lua(HAS_INLINE) else "popup")  # 0.11 has no vim.lsp.inline_completion
    assert nvim.exec_lua(COMPLETION_ENABLED)


def test_popup_completion_from_the_server_is_accepted_into_the_buffer(nvim, tmp_path):
    nvim.options["completeopt"] = "menuone,noselect"  # show the popup even for one item
    setup_plugin(nvim, tmp_path, text="return a + b", inline=False)  # popup mode on 0.12 too
    open_attached(nvim, tmp_path / "calc.py", "def add(a, b):\n    \n")
    nvim.input("2GA")  # insert mode at the end of the empty body line
    wait_lua(nvim, "vim.fn.mode() == 'i'")
    nvim.exec_lua("vim.lsp.completion.get()")
    assert wait_lua(nvim, "vim.fn.pumvisible() == 1"), "no completion popup appeared"
    # Neovim 0.11 shows the label and inserts the first word; accepting applies the server's whole textEdit.
    items = nvim.exec_lua("return vim.fn.complete_info({'items'}).items")
    assert [item["abbr"] for item in items] == ["return a + b"]
    nvim.input("<C-n><C-y><Esc>")
    assert wait_lua(nvim, "vim.fn.mode() == 'n'")
    assert nvim.current.buffer[:] == ["def add(a, b):", "    return a + b"]


def test_multi_line_popup_completion_inserts_every_line(nvim, tmp_path):
    nvim.options["completeopt"] = "menuone,noselect"
    setup_plugin(nvim, tmp_path, text="total = a + b\n    return total", inline=False)
    open_attached(nvim, tmp_path / "calc.py", "def add(a, b):\n    \n")
    nvim.input("2GA")
    wait_lua(nvim, "vim.fn.mode() == 'i'")
    nvim.exec_lua("vim.lsp.completion.get()")
    assert wait_lua(nvim, "vim.fn.pumvisible() == 1"), "no completion popup appeared"
    nvim.input("<C-n><C-y><Esc>")
    assert wait_lua(nvim, "vim.fn.mode() == 'n'")
    assert nvim.current.buffer[:] == ["def add(a, b):", "    total = a + b", "    return total"]


def test_quick_fix_for_a_syntax_error_applies(nvim, tmp_path):
    # The fix rewrites the broken statement (the instant engine's fixed answer) and leaves every other line as it was.
    setup_plugin(nvim, tmp_path, text="return a + b")
    open_attached(nvim, tmp_path / "calc.py", "def add(a, b):\n    return a +\n")
    assert wait_lua(nvim, "#vim.diagnostic.get(0) > 0"), "the server published no syntax diagnostic"
    nvim.exec_lua("vim.lsp.buf.code_action({ apply = true, range = { start = { 2, 0 }, ['end'] = { 2, 0 } } })")
    assert wait_lua(nvim, "vim.api.nvim_buf_get_lines(0, 1, 2, false)[1] == '    return a + b'"), nvim.current.buffer[:]
    assert nvim.current.buffer[:] == ["def add(a, b):", "    return a + b"]


def checkhealth(nvim) -> str:
    nvim.command("checkhealth mimo")
    return "\n".join(nvim.current.buffer[:])


def test_checkhealth_finds_the_server_and_a_reachable_engine(nvim, tmp_path):
    setup_plugin(nvim, tmp_path)
    open_attached(nvim, tmp_path / "calc.py", "x = 1\n")
    report = checkhealth(nvim)
    assert "OK found" in report
    assert "OK server running" in report
    assert "OK engine reachable: model nano" in report  # the instant engine reports the configured model name
    assert "ERROR" not in report


def test_checkhealth_starts_a_server_when_none_is_attached(nvim, tmp_path):
    setup_plugin(nvim, tmp_path)
    report = checkhealth(nvim)  # the current buffer is empty: nothing attached yet
    assert "no mimo server is running; starting one to check it" in report
    assert "OK engine reachable" in report


def test_checkhealth_before_any_buffer_waits_for_the_real_model_to_load(nvim, tmp_path):
    """No buffer has started a server, so the check starts one, which is still loading nano (a real model, seconds
    on a CPU) when first asked: the report says it is loading, waits for it, and ends green."""
    nvim.exec_lua(
        "local python, telemetry = ...\n"
        "require('mimo').setup({ cmd = { python, '-m', 'lsp_server' },"
        " settings = { engine = { model = 'nano', backend = 'native', threads = 1 }, telemetry = { path = telemetry } } })",
        sys.executable,
        str(tmp_path / "telemetry.sqlite"),
    )
    report = checkhealth(nvim)
    assert "engine loading: model nano (waiting up to 120 s)" in report
    assert "OK engine reachable: model nano" in report
    assert "ERROR" not in report and "WARNING" not in report


def test_checkhealth_reports_a_missing_executable(nvim, tmp_path):
    setup_plugin(nvim, tmp_path, cmd=["mimo-not-installed-here", "lsp"])
    report = checkhealth(nvim)
    assert "ERROR mimo-not-installed-here not found" in report


def test_mimo_status_shows_the_engine_state_and_model(nvim, tmp_path):
    setup_plugin(nvim, tmp_path)
    assert "not attached" in command_output(nvim, "MimoStatus")
    open_attached(nvim, tmp_path / "calc.py", "x = 1\n")
    assert wait_lua(nvim, "require('mimo').status.state == 'ready'")
    mode = "inline" if nvim.exec_lua(HAS_INLINE) else "popup"
    assert command_output(nvim, "MimoStatus") == f"mimo: on | engine ready | model nano | completion {mode}"


def test_mimo_toggle_turns_completion_off_and_on_in_attached_buffers(nvim, tmp_path):
    setup_plugin(nvim, tmp_path)
    open_attached(nvim, tmp_path / "calc.py", "x = 1\n")
    assert nvim.exec_lua(COMPLETION_ENABLED)
    nvim.command("MimoToggle")
    assert not nvim.exec_lua(COMPLETION_ENABLED)
    assert command_output(nvim, "MimoStatus").startswith("mimo: off")
    nvim.command("MimoToggle")
    assert nvim.exec_lua(COMPLETION_ENABLED)
    assert nvim.exec_lua("return require('mimo').client().initialized")  # the server kept running throughout


def test_review_findings_returned_by_the_server_become_diagnostics(nvim, tmp_path):
    setup_plugin(nvim, tmp_path)
    open_attached(nvim, tmp_path / "calc.py", "x = 1\ny = x / 0\n")
    record_notifications(nvim)
    finding = {
        "range": {"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 9}},
        "message": "division by zero",
        "severity": 1,
        "source": "mimo review",
    }
    nvim.exec_lua(
        "local m = require('mimo'); m._show_review(..., 0, m.client())", {"diagnostics": [finding], "notes": ["1 file"]}
    )
    diagnostics = nvim.exec_lua("return vim.diagnostic.get(0)")
    assert [(d["lnum"], d["col"], d["message"]) for d in diagnostics] == [(1, 4, "division by zero")]
    assert nvim.exec_lua("return _G.notifications") == ["mimo review: 1 file"]


def test_review_without_a_server_says_so(nvim, tmp_path):
    setup_plugin(nvim, tmp_path)
    record_notifications(nvim)
    nvim.command("MimoReview")
    assert nvim.exec_lua("return _G.notifications") == ["mimo: no server attached to this buffer"]


def test_setup_rejects_a_bad_cmd_with_a_clear_message(nvim, tmp_path):
    error = nvim.exec_lua("return select(2, pcall(require('mimo').setup, { cmd = 'mimo lsp' }))")
    assert "cmd" in error and "non-empty list of strings" in error


def command_output(nvim, command: str) -> str:
    return nvim.exec_lua(f"return vim.api.nvim_exec2('{command}', {{ output = true }}).output")


def record_notifications(nvim) -> None:
    nvim.exec_lua("_G.notifications = {}; vim.notify = function(msg) table.insert(_G.notifications, msg) end")


def test_connects_to_a_server_listening_on_tcp(nvim, tmp_path, tcp_server):
    settings = json.dumps(instant_settings(tmp_path, "return a + b"))
    nvim.exec_lua(
        "local port, settings = ...\n"
        "require('mimo').setup({ cmd = vim.lsp.rpc.connect('127.0.0.1', port), settings = vim.json.decode(settings) })",
        tcp_server,
        settings,
    )
    open_attached(nvim, tmp_path / "calc.py", "def add(a, b):\n    \n")
    reply = nvim.exec_lua(
        """
        local params = vim.lsp.util.make_position_params(0, 'utf-16')
        params.position = { line = 1, character = 4 }
        params.context = { triggerKind = 1 }
        return require('mimo').client():request_sync('textDocument/inlineCompletion', params, 10000, 0)
        """
    )
    assert [item["insertText"] for item in reply["result"]["items"]] == ["return a + b"]
    assert "OK engine reachable" in checkhealth(nvim)


def require_inline(nvim) -> None:
    assert nvim.exec_lua(HAS_INLINE), "this Neovim has no vim.lsp.inline_completion (0.12+): check $MIMO_NVIM"


GHOST_TEXT = (
    "#vim.api.nvim_buf_get_extmarks(0, vim.api.nvim_get_namespaces()['nvim.lsp.inline_completion'] or -1, 0, -1, {})"
    " > 0"
)


@ON_012
def test_ghost_text_appears_and_tab_accepts_it_on_0_12(nvim, tmp_path):
    require_inline(nvim)
    setup_plugin(nvim, tmp_path, text="return a + b")
    open_attached(nvim, tmp_path / "calc.py", "def add(a, b):\n    \n")
    nvim.input("2GA")  # the inline handler drops answers outside insert mode
    assert wait_lua(nvim, GHOST_TEXT), "no ghost text appeared"
    nvim.input("<Tab>")
    assert wait_lua(nvim, "vim.api.nvim_get_current_line() == '    return a + b'"), nvim.current.buffer[:]
    nvim.input("<Esc>")
    assert nvim.current.buffer[:] == ["def add(a, b):", "    return a + b"]


@ON_012
def test_tab_without_ghost_text_is_a_tab_on_0_12(nvim, tmp_path):
    require_inline(nvim)
    setup_plugin(nvim, tmp_path, text="return a + b")
    open_attached(nvim, tmp_path / "calc.py", "x = 1\n")
    nvim.command("MimoToggle")  # completions off: no ghost text can appear
    nvim.input("A<Tab><Esc>")
    assert wait_lua(nvim, "vim.fn.mode() == 'n'")
    line = nvim.current.buffer[0]
    assert line != "x = 1" and line.rstrip() == "x = 1"  # a tab, or spaces where the ftplugin sets expandtab


def test_empty_lua_tables_in_settings_reach_the_server_as_objects(nvim, tmp_path):
    # Written in Lua, where {} is ambiguous (JSON decoding in the other tests keeps objects as objects).
    nvim.exec_lua(
        """
        local python, telemetry = ...
        require('mimo').setup({
          cmd = { python, '-m', 'lsp_server' },
          settings = { engine = { backend = 'instant' }, languages = {}, telemetry = { path = telemetry } },
        })
        """,
        sys.executable,
        str(tmp_path / "telemetry.sqlite"),
    )
    open_attached(nvim, tmp_path / "calc.py", "x = 1\n")
    assert wait_lua(nvim, "require('mimo').status.state == 'ready'")
    messages = command_output(nvim, "messages")  # the server's window/showMessage warnings are echoed here
    assert "MiMo settings" not in messages


# ---- api_key and prompt_mode: passed to the server as engine.apiKey and completion.promptMode (like VS Code) ----

INLINE_AT = """
    local line, character = ...
    local params = vim.lsp.util.make_position_params(0, 'utf-16')
    params.position = { line = line, character = character }
    params.context = { triggerKind = 1 }
    local reply = require('mimo').client():request_sync('textDocument/inlineCompletion', params, 20000, 0)
    return vim.tbl_map(function(item) return item.insertText end, reply.result.items or reply.result)
"""


READY = "require('mimo').status.state == 'ready' or require('mimo').status.state == 'fallback'"  # loaded


def fake_openai_module():
    """The OpenAI-compatible stand-in of tests/lsp_server (it refuses requests without its key, records bodies)."""
    sys.path.insert(0, str(REPO / "tests" / "lsp_server"))  # a sibling test folder, not a package
    import fake_openai

    return fake_openai


def setup_with_engine(nvim, tmp_path, url: str, extra_lua: str = "") -> None:
    """setup() with the remote engine at ``url`` in front of the local nano (the instant backend has no remote)."""
    settings = instant_settings(tmp_path, "")
    settings["engine"] = {"backend": "native", "model": "nano", "threads": 1, "url": url}
    nvim.exec_lua(
        "local python, settings = ...\n"
        "require('mimo').setup({ cmd = { python, '-m', 'lsp_server' }, settings = vim.json.decode(settings)"
        f"{extra_lua} }})",
        sys.executable,
        json.dumps(settings),
    )


def test_api_key_and_prompt_mode_options_reach_the_server(nvim, tmp_path):
    """api_key as a function (a password manager's answer, trimmed) and prompt_mode "chat": the keyed engine
    answers, asked with chat messages."""
    fake = fake_openai_module()
    app = fake.fake_openai(api_key="sk-nvim-1")
    with fake.serving(app) as url:
        options = ", api_key = function() return ' sk-nvim-1\\n' end, prompt_mode = 'chat'"
        setup_with_engine(nvim, tmp_path, url, options)
        open_attached(nvim, tmp_path / "calc.py", "def add(a, b):\n    return \n")
        assert wait_lua(nvim, READY, 120000), nvim.exec_lua("return require('mimo').status")
        assert nvim.exec_lua(INLINE_AT, 1, 11) == ["a + b"]
        assert nvim.exec_lua("return require('mimo').status.state") == "ready"  # not "fallback"
    assert app.state.bodies and all("messages" in body for body in app.state.bodies)  # chat, as asked


@ON_012
def test_without_the_api_key_the_keyed_engine_refuses_and_the_local_model_answers(nvim, tmp_path):
    fake = fake_openai_module()
    app = fake.fake_openai(api_key="sk-nvim-1")
    with fake.serving(app) as url:
        setup_with_engine(nvim, tmp_path, url, ", prompt_mode = 'chat'")
        open_attached(nvim, tmp_path / "calc.py", "def add(a, b):\n    return \n")
        assert wait_lua(nvim, READY, 120000), nvim.exec_lua("return require('mimo').status")
        nvim.exec_lua(INLINE_AT, 1, 11)  # answered by the local nano, whatever it writes
        assert wait_lua(nvim, "require('mimo').status.state == 'fallback'"), nvim.exec_lua(
            "return require('mimo').status"
        )
    assert app.state.bodies == []  # refused at the door: no request body was read


def test_setup_rejects_a_bad_prompt_mode_or_api_key_with_a_clear_message(nvim, tmp_path):
    error = nvim.exec_lua("return select(2, pcall(require('mimo').setup, { prompt_mode = 'fill' }))")
    assert "prompt_mode" in error and "one of auto, fim, prefix, chat" in error
    error = nvim.exec_lua("return select(2, pcall(require('mimo').setup, { api_key = 42 }))")
    assert "api_key" in error
    error = nvim.exec_lua("return select(2, pcall(require('mimo').setup, { api_key = function() return 42 end }))")
    assert error == "mimo: api_key's function must return a string or nil (got number)"
