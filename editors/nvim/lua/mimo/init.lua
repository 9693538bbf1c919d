-- mimo-code for Neovim: starts `mimo lsp` with vim.lsp.config / vim.lsp.enable (Neovim 0.11+), shows ghost
-- text through vim.lsp.inline_completion (0.12+) or popup completion through vim.lsp.completion (0.11).
local M = {}

local NAME = "mimo"
M.enabled = true
M.status = {} -- the last `mimo/status` notification from the server (engine, model, fallback, latency)
M.config = nil

local function has_inline_completion()
  return vim.lsp.inline_completion ~= nil
end

local function set_inline_keymaps(bufnr, keymaps)
  local function map(lhs, fn, desc)
    if lhs then
      vim.keymap.set("i", lhs, fn, { buffer = bufnr, desc = desc, expr = false })
    end
  end
  map(keymaps.accept, function()
    if not vim.lsp.inline_completion.get() then
      -- Nothing shown: behave like the key would without the plugin.
      vim.api.nvim_feedkeys(vim.keycode(keymaps.accept), "n", false)
    end
  end, "mimo: accept suggestion")
  map(keymaps.next, function() vim.lsp.inline_completion.select({ count = 1 }) end, "mimo: next suggestion")
  map(keymaps.prev, function() vim.lsp.inline_completion.select({ count = -1 }) end, "mimo: previous suggestion")
end

local function on_attach(client, bufnr)
  local config = M.config
  if config.inline and has_inline_completion() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    set_inline_keymaps(bufnr, config.keymaps)
  elseif config.popup then
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = true })
  end
end

---@return vim.lsp.Client|nil
function M.client(bufnr)
  return vim.lsp.get_clients({ name = NAME, bufnr = bufnr or 0 })[1]
end

function M.setup(opts)
  M.config = require("mimo.config").resolve(opts)
  vim.lsp.config(NAME, {
    cmd = M.config.cmd,
    filetypes = M.config.filetypes,
    root_markers = M.config.root_markers,
    init_options = M.config.settings,
    settings = { mimo = M.config.settings },
    on_attach = on_attach,
    handlers = {
      ["mimo/status"] = function(_, params)
        M.status = params or {}
      end,
    },
  })
  vim.lsp.enable(NAME, M.enabled)
  require("mimo.commands").create()
end

function M.toggle()
  M.enabled = not M.enabled
  vim.lsp.enable(NAME, M.enabled)
  vim.notify("mimo: " .. (M.enabled and "enabled" or "disabled"))
end

--- One line describing the server and engine, as :MimoStatus prints it.
function M.status_line()
  local client = M.client()
  if not client then
    return M.enabled and "mimo: not attached to this buffer" or "mimo: disabled"
  end
  local s = M.status
  local parts = { "mimo: attached" }
  for _, key in ipairs({ "backend", "model", "latency_ms" }) do
    if s[key] ~= nil then
      table.insert(parts, key .. "=" .. tostring(s[key]))
    end
  end
  if s.fallback_reason and s.fallback_reason ~= vim.NIL then
    table.insert(parts, "using local fallback: " .. tostring(s.fallback_reason))
  end
  return table.concat(parts, " ")
end

--- Asks the server to review the current file's uncommitted changes; findings arrive as diagnostics.
function M.review()
  local client = M.client()
  if not client then
    vim.notify("mimo: no server attached to this buffer", vim.log.levels.WARN)
    return
  end
  local uri = vim.uri_from_bufnr(0)
  client:request("workspace/executeCommand", { command = "mimo.review", arguments = { uri } }, function(err)
    if err then
      vim.notify("mimo review failed: " .. err.message, vim.log.levels.ERROR)
    end
  end, 0)
end

return M
