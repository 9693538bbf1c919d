"""The Neovim plugin in a real headless Neovim 0.11 with the real language server attached."""

from __future__ import annotations

from conftest import open_attached, setup_plugin, wait_lua


def test_server_attaches_with_popup_completion_on_0_11(nvim, tmp_path):
    setup_plugin(nvim, tmp_path)
    open_attached(nvim, tmp_path / "calc.py", "def add(a, b):\n    \n")
    mode = nvim.exec_lua("return require('mimo.completion').mode(require('mimo').config)")
    assert mode == "popup"  # 0.11 has no vim.lsp.inline_completion
    assert nvim.exec_lua("return vim.fn.exists('#nvim.lsp.completion_' .. vim.api.nvim_get_current_buf())") == 1


def test_popup_completion_from_the_server_is_accepted_into_the_buffer(nvim, tmp_path):
    nvim.options["completeopt"] = "menuone,noselect"  # show the popup even for one item
    setup_plugin(nvim, tmp_path, text="return a + b")
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
    setup_plugin(nvim, tmp_path, text="total = a + b\n    return total")
    open_attached(nvim, tmp_path / "calc.py", "def add(a, b):\n    \n")
    nvim.input("2GA")
    wait_lua(nvim, "vim.fn.mode() == 'i'")
    nvim.exec_lua("vim.lsp.completion.get()")
    assert wait_lua(nvim, "vim.fn.pumvisible() == 1"), "no completion popup appeared"
    nvim.input("<C-n><C-y><Esc>")
    assert wait_lua(nvim, "vim.fn.mode() == 'n'")
    assert nvim.current.buffer[:] == ["def add(a, b):", "    total = a + b", "    return total"]


def test_quick_fix_for_a_syntax_error_applies(nvim, tmp_path):
    # The diagnostic covers both lines, so the fix (the instant engine's fixed answer) rewrites both.
    setup_plugin(nvim, tmp_path, text="values = [1, 2]\nprint(values)")
    open_attached(nvim, tmp_path / "calc.py", "values = [1, 2\nprint(values)\n")
    assert wait_lua(nvim, "#vim.diagnostic.get(0) > 0"), "the server published no syntax diagnostic"
    nvim.exec_lua("vim.lsp.buf.code_action({ apply = true, range = { start = { 1, 0 }, ['end'] = { 2, 0 } } })")
    assert wait_lua(nvim, "vim.api.nvim_buf_get_lines(0, 0, 1, false)[1] == 'values = [1, 2]'"), nvim.current.buffer[:]
    assert nvim.current.buffer[:] == ["values = [1, 2]", "print(values)"]
