-- :checkhealth mimo — is `mimo` installed, does the server start, is the engine reachable?
local M = {}

local function check_executable(cmd)
  if vim.fn.executable(cmd[1]) == 1 then
    vim.health.ok("found " .. cmd[1] .. " (" .. vim.fn.exepath(cmd[1]) .. ")")
    return true
  end
  vim.health.error(cmd[1] .. " not found", { "pip install mimo-code, or set cmd in require('mimo').setup()" })
  return false
end

local function check_server_starts(cmd)
  local result = vim.system({ cmd[1], "lsp", "--help" }, { text = true }):wait(30000)
  if result.code == 0 then
    vim.health.ok("`" .. cmd[1] .. " lsp` runs")
  else
    vim.health.error("`" .. cmd[1] .. " lsp --help` failed: " .. (result.stderr or ""):sub(1, 200))
  end
end

local function check_attached_engine()
  local mimo = require("mimo")
  local client = mimo.client()
  if not client then
    vim.health.info("no mimo server attached to the current buffer; open a supported file to check the engine")
    return
  end
  vim.health.ok("server attached (client id " .. client.id .. ")")
  local reply = client:request_sync("workspace/executeCommand", { command = "mimo.status", arguments = {} }, 10000, 0)
  if reply and reply.result and not reply.err then
    local status = reply.result
    if status.fallback_reason and status.fallback_reason ~= vim.NIL then
      vim.health.warn("engine reachable through the local fallback: " .. tostring(status.fallback_reason))
    else
      vim.health.ok("engine reachable: " .. tostring(status.backend) .. " / " .. tostring(status.model))
    end
  else
    local message = reply and reply.err and reply.err.message or "no answer"
    vim.health.error("engine status request failed: " .. message)
  end
end

function M.check()
  vim.health.start("mimo")
  if vim.fn.has("nvim-0.11") == 0 then
    vim.health.error("Neovim 0.11 or newer is needed (vim.lsp.config / vim.lsp.enable)")
    return
  end
  local config = require("mimo").config or require("mimo.config").defaults
  if check_executable(config.cmd) then
    check_server_starts(config.cmd)
  end
  check_attached_engine()
end

return M
