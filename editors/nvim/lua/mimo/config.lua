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
---@field api_key string|fun():string|nil  the engine.url server's key (`mimo serve --api-key`), or a function
---                                        returning it (read from a password manager); nil: $MIMO_API_KEY
---@field prompt_mode string|nil  "auto", "fim", "prefix" or "chat" (settings.completion.promptMode)
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

M.PROMPT_MODES = { "auto", "fim", "prefix", "chat" }

--- The key to send: the option's text, or what its function returns (called at setup, so a password manager
--- is asked once); nil when it gives nothing. Blank text counts as none, and a pasted line break is trimmed.
---@return string|nil
local function api_key(option)
  local key = option
  if type(option) == "function" then
    key = option()
    if key ~= nil and type(key) ~= "string" then
      error("mimo: api_key's function must return a string or nil (got " .. type(key) .. ")", 0)
    end
  end
  key = key and vim.trim(key) or nil
  return key ~= "" and key or nil
end

--- The server's settings with the top-level options folded in, as the VS Code extension sends them:
--- api_key as engine.apiKey and prompt_mode as completion.promptMode (they win over the same keys in settings).
---@param config mimo.Config
---@return table
function M.settings_for(config)
  local settings = vim.deepcopy(config.settings)
  local key = api_key(config.api_key)
  if key then
    settings.engine = vim.tbl_extend("force", settings.engine or {}, { apiKey = key })
  end
  if config.prompt_mode then
    settings.completion = vim.tbl_extend("force", settings.completion or {}, { promptMode = config.prompt_mode })
  end
  return M.server_settings(settings)
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
  vim.validate("api_key", config.api_key, { "string", "function" }, true)
  vim.validate("prompt_mode", config.prompt_mode, function(v)
    return v == nil or vim.tbl_contains(M.PROMPT_MODES, v)
  end, "one of " .. table.concat(M.PROMPT_MODES, ", ") .. " (or nil)")
  return config
end

return M
