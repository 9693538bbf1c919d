-- Options for require("mimo").setup(): defaults and validation, kept apart from the wiring.
local M = {}

---@class (exact) mimo.Keymaps
---@field accept string|false  accept the ghost text (falls back to the key's own meaning when none is shown)
---@field next string|false    show the next suggestion
---@field prev string|false    show the previous suggestion

---@class (exact) mimo.Config
---@field cmd string[]|function  command that starts the server (stdio), or vim.lsp.rpc.connect(host, port)
---@field filetypes string[]      buffers the server attaches to
---@field root_markers string[]   files that mark a project root
---@field settings table          server settings (docs/lsp.md), sent as initializationOptions and workspace settings
---@field inline boolean          ghost text on Neovim 0.12+ (vim.lsp.inline_completion)
---@field popup boolean           popup completion through vim.lsp.completion (0.11, or 0.12 with inline = false)
---@field keymaps mimo.Keymaps    insert-mode keys for ghost text
M.defaults = {
  cmd = { "mimo", "lsp" },
  filetypes = { "python", "javascript", "typescript", "typescriptreact", "go", "rust", "java", "c", "cpp", "lua" },
  root_markers = { ".git", "pyproject.toml", "package.json", "go.mod", "Cargo.toml" },
  settings = {},
  inline = true,
  popup = true,
  keymaps = { accept = "<Tab>", next = "<M-]>", prev = "<M-[>" },
}

local function is_list_of_strings(value)
  if type(value) ~= "table" or not vim.islist(value) then
    return false
  end
  for _, item in ipairs(value) do
    if type(item) ~= "string" then
      return false
    end
  end
  return true
end

--- The settings as the server must see them: Lua's empty tables encode as JSON arrays, and the server wants
--- objects (`languages = {}` would otherwise be rejected with a warning), so they become vim.empty_dict().
---@param settings table
---@return table
function M.server_settings(settings)
  if vim.tbl_isempty(settings) then
    return vim.empty_dict()
  end
  local converted = {}
  for key, value in pairs(settings) do
    converted[key] = type(value) == "table" and not vim.islist(value) and M.server_settings(value)
      or (type(value) == "table" and vim.tbl_isempty(value) and vim.empty_dict() or value)
  end
  return converted
end

---@param opts table|nil
---@return mimo.Config
function M.resolve(opts)
  local config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  -- Lists replace the defaults instead of merging index by index.
  for _, key in ipairs({ "cmd", "filetypes", "root_markers" }) do
    if opts and opts[key] ~= nil then
      config[key] = opts[key]
    end
  end
  vim.validate("cmd", config.cmd, function(v)
    return type(v) == "function" or (is_list_of_strings(v) and #v > 0)
  end, "a non-empty list of strings, e.g. { 'mimo', 'lsp' }, or vim.lsp.rpc.connect(host, port)")
  vim.validate("filetypes", config.filetypes, is_list_of_strings, "a list of filetypes")
  vim.validate("root_markers", config.root_markers, is_list_of_strings, "a list of file names")
  vim.validate("settings", config.settings, "table")
  vim.validate("inline", config.inline, "boolean")
  vim.validate("popup", config.popup, "boolean")
  vim.validate("keymaps", config.keymaps, "table")
  return config
end

return M
