-- Completion wiring per buffer: ghost text through vim.lsp.inline_completion (Neovim 0.12+) with accept/next/prev
-- keys, or popup completion through vim.lsp.completion (0.11). The server decides what to suggest.
local M = {}

function M.has_inline()
  return vim.lsp.inline_completion ~= nil
end

---@return "inline"|"popup"|"off"
function M.mode(config)
  if config.inline and M.has_inline() then
    return "inline"
  end
  return config.popup and "popup" or "off"
end

local function set_inline_keymaps(bufnr, keymaps)
  local function map(lhs, fn, desc)
    if lhs then
      vim.keymap.set("i", lhs, fn, { buffer = bufnr, desc = desc })
    end
  end
  map(keymaps.accept, function()
    if not vim.lsp.inline_completion.get() then
      -- Nothing shown: the key keeps its usual meaning, right where it was typed ("i": before pending keys).
      vim.api.nvim_feedkeys(vim.keycode(keymaps.accept), "ni", false)
    end
  end, "mimo: accept suggestion")
  map(keymaps.next, function()
    vim.lsp.inline_completion.select({ count = 1 })
  end, "mimo: next suggestion")
  map(keymaps.prev, function()
    vim.lsp.inline_completion.select({ count = -1 })
  end, "mimo: previous suggestion")
end

local function snippet_escape(text)
  return (text:gsub("[\\$}]", "\\%0"))
end

-- Snippet expansion indents every continuation line by the cursor line's indent, and the server's lines
-- already carry theirs: take it off once.
local function without_base_indent(text)
  local indent = vim.api.nvim_get_current_line():match("^%s*")
  if indent == "" then
    return text
  end
  local lines = vim.split(text, "\n", { plain = true })
  for i = 2, #lines do
    if vim.startswith(lines[i], indent) then
      lines[i] = lines[i]:sub(#indent + 1)
    end
  end
  return table.concat(lines, "\n")
end

--- The popup entry for one of the server's items. Neovim 0.11 inserts only the first word of a plain-text
--- item (its `word`), so the whole first line becomes the word, and a multi-line suggestion is handed to
--- Neovim's snippet expansion (as literal text) to insert all of its lines when accepted.
---@param item lsp.CompletionItem
---@param client_id integer
---@return table  fields that override the default complete-item
function M.popup_item(item, client_id)
  local text = item.textEdit and item.textEdit.newText or item.insertText or item.label
  if item.insertTextFormat == 2 then
    return {} -- already a snippet: Neovim expands all of it
  end
  if not text:find("\n") then
    return { word = text }
  end
  local snippet = vim.deepcopy(item)
  snippet.insertTextFormat = 2
  local body = snippet_escape(without_base_indent(text))
  if snippet.textEdit then
    snippet.textEdit.newText = body
  else
    snippet.insertText = body
  end
  local user_data = { nvim = { lsp = { completion_item = snippet, client_id = client_id } } }
  return { word = text:match("^[^\n]*"), user_data = user_data }
end

--- Turns completions on or off for one buffer the client is attached to. Keymaps stay; with ghost text off,
--- the accept key falls through to its usual meaning.
---@param client vim.lsp.Client
function M.set(client, bufnr, config, enabled)
  local mode = M.mode(config)
  if mode == "inline" then
    -- Per buffer, not per client: 0.12 records a client-scoped switch where is_enabled() and later toggles
    -- do not see it for the buffer.
    vim.lsp.inline_completion.enable(enabled, { bufnr = bufnr })
  elseif mode == "popup" then
    local opts = {
      autotrigger = true,
      convert = function(item)
        return M.popup_item(item, client.id)
      end,
    }
    vim.lsp.completion.enable(enabled, client.id, bufnr, opts)
  end
end

---@param client vim.lsp.Client
function M.attach(client, bufnr, config, enabled)
  if M.mode(config) == "inline" then
    set_inline_keymaps(bufnr, config.keymaps)
  end
  M.set(client, bufnr, config, enabled)
end

return M
