-- mimo-code for Neovim: starts `mimo lsp` with vim.lsp.config / vim.lsp.enable (Neovim 0.11+) and wires its
-- completions (completion.lua), commands (commands.lua) and :checkhealth mimo (health.lua).
local M = {}

M.NAME = "mimo"
M.enabled = true -- completions on; the server keeps running (and its model loaded) while they are off
M.status = {} -- the last `mimo/status` notification: { state, model, message }
M.config = nil ---@type mimo.Config|nil

local function on_attach(client, bufnr)
  require("mimo.completion").attach(client, bufnr, M.config, M.enabled)
end

local function on_status(_, params)
  M.status = params or {}
  vim.api.nvim_exec_autocmds("User", { pattern = "MimoStatus", modeline = false, data = M.status })
end

function M.setup(opts)
  if vim.fn.has("nvim-0.11") == 0 then
    vim.notify("mimo needs Neovim 0.11 or newer (vim.lsp.config)", vim.log.levels.ERROR)
    return
  end
  M.config = require("mimo.config").resolve(opts)
  local settings = require("mimo.config").settings_for(M.config)
  vim.lsp.config(M.NAME, {
    cmd = M.config.cmd,
    filetypes = M.config.filetypes,
    root_markers = M.config.root_markers,
    init_options = settings,
    settings = { mimo = settings },
    on_attach = on_attach,
    handlers = { ["mimo/status"] = on_status },
  })
  vim.lsp.enable(M.NAME)
  require("mimo.commands").create()
end

---@return vim.lsp.Client|nil
function M.client(bufnr)
  return vim.lsp.get_clients({ name = M.NAME, bufnr = bufnr or 0 })[1]
end

--- Turns completions on or off in every attached buffer.
function M.toggle()
  M.enabled = not M.enabled
  local completion = require("mimo.completion")
  for _, client in ipairs(vim.lsp.get_clients({ name = M.NAME })) do
    for bufnr in pairs(client.attached_buffers) do
      completion.set(client, bufnr, M.config, M.enabled)
    end
  end
  vim.notify("mimo: completions " .. (M.enabled and "on" or "off"))
end

--- One line describing the server and engine, as :MimoStatus prints it.
function M.status_line()
  local client = M.client()
  if not client then
    return "mimo: not attached to this buffer"
  end
  local s = M.status
  local parts = { "mimo:", M.enabled and "on" or "off", "|" }
  table.insert(parts, "engine " .. tostring(s.state or "starting"))
  if s.model then
    table.insert(parts, "| model " .. tostring(s.model))
  end
  if s.message and s.message ~= vim.NIL then
    table.insert(parts, "| " .. tostring(s.message))
  end
  table.insert(parts, "| completion " .. require("mimo.completion").mode(M.config))
  return table.concat(parts, " ")
end

--- Shows the answer to `mimo.review` (exposed for tests).
function M._show_review(result, bufnr, client)
  -- Findings the server returns (rather than publishes) go to the buffer's diagnostics all the same.
  if type(result) == "table" and type(result.diagnostics) == "table" then
    local publish = { uri = vim.uri_from_bufnr(bufnr), diagnostics = result.diagnostics }
    vim.lsp.diagnostic.on_publish_diagnostics(nil, publish, { client_id = client.id })
  end
  local notes = type(result) == "table" and result.notes or nil
  if type(notes) == "table" and #notes > 0 then
    vim.notify("mimo review: " .. table.concat(notes, "; "))
  end
end

--- Asks the server (command `mimo.review`) to review this buffer's uncommitted changes; the findings show as
--- diagnostics with quick fixes.
function M.review()
  local client = M.client()
  if not client then
    vim.notify("mimo: no server attached to this buffer", vim.log.levels.WARN)
    return
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local params = { command = "mimo.review", arguments = { vim.uri_from_bufnr(bufnr) } }
  client:request("workspace/executeCommand", params, function(err, result)
    if err then
      vim.notify("mimo review failed: " .. err.message, vim.log.levels.ERROR)
      return
    end
    M._show_review(result, bufnr, client)
  end, bufnr)
end

return M
