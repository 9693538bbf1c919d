-- Options for require("mimo").setup(): defaults and validation, kept apart from the wiring.
local M = {}

---@class mimo.Config
---@field cmd string[]            command that starts the language server
---@field filetypes string[]      buffers the server attaches to
---@field root_markers string[]   files that mark a project root
---@field settings table          server settings (see docs/lsp.md), sent as initializationOptions and settings
---@field inline boolean          ghost text on Neovim 0.12+ (vim.lsp.inline_completion)
---@field popup boolean           popup completion through vim.lsp.completion (0.11+, and 0.12 when inline is off)
---@field keymaps table           insert-mode keys for ghost text: accept, next, prev (false disables one)
M.defaults = {
  cmd = { "mimo", "lsp" },
  filetypes = { "python", "javascript", "typescript", "typescriptreact", "go", "rust", "java", "c", "cpp", "lua" },
  root_markers = { ".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml" },
  settings = {},
  inline = true,
  popup = true,
  keymaps = { accept = "<Tab>", next = "<M-]>", prev = "<M-[>" },
}

---@param opts table|nil
---@return mimo.Config
function M.resolve(opts)
  local config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  vim.validate("cmd", config.cmd, "table")
  vim.validate("filetypes", config.filetypes, "table")
  vim.validate("settings", config.settings, "table")
  vim.validate("inline", config.inline, "boolean")
  vim.validate("popup", config.popup, "boolean")
  vim.validate("keymaps", config.keymaps, "table")
  return config
end

return M
