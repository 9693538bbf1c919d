-- :checkhealth mimo — is `mimo` installed, does the server start, is the engine reachable?
local M = {}

local START_TIMEOUT_MS = 30000
local ENGINE_TIMEOUT_MS = 120000 -- the first load of a local model can take this long on a laptop CPU

local function check_executable(cmd)
  if type(cmd) == "function" then
    vim.health.info("cmd connects to a running server (no executable to find)")
    return true
  end
  if vim.fn.executable(cmd[1]) == 1 then
    vim.health.ok("found " .. cmd[1] .. " (" .. vim.fn.exepath(cmd[1]) .. ")")
    return true
  end
  vim.health.error(cmd[1] .. " not found", { "pip install mimo-code, or set cmd in require('mimo').setup()" })
  return false
end

---@return vim.lsp.Client|nil
local function started_client()
  local mimo = require("mimo")
  -- :checkhealth runs in its own buffer, so any running mimo client will do.
  local client = vim.lsp.get_clients({ name = mimo.NAME })[1]
  if not client then
    vim.health.info("no mimo server is running; starting one to check it")
    local config = vim.tbl_extend("force", vim.lsp.config[mimo.NAME], { name = mimo.NAME })
    local id = vim.lsp.start(config, { attach = false })
    client = id and vim.lsp.get_client_by_id(id) or nil
  end
  if not client then
    local how = type(mimo.config.cmd) == "table" and table.concat(mimo.config.cmd, " ") or "mimo lsp --tcp HOST:PORT"
    vim.health.error("the server did not start", { "run `" .. how .. "` by hand" })
    return nil
  end
  vim.wait(START_TIMEOUT_MS, function()
    return client.initialized or client:is_stopped()
  end, 50)
  if not client.initialized then
    vim.health.error("the server started but did not initialize", { "see :LspLog" })
    return nil
  end
  vim.health.ok("server running (client id " .. client.id .. ", " .. tostring((client.server_info or {}).name) .. ")")
  return client
end

local function offers_command(client, name)
  local provider = client.server_capabilities.executeCommandProvider or {}
  return vim.tbl_contains(provider.commands or {}, name)
end

--- The engine's state now: from `mimo.status` when the server offers it, else the last `mimo/status` notification.
local function current_status(client)
  if offers_command(client, "mimo.status") then
    local reply = client:request_sync("workspace/executeCommand", { command = "mimo.status" }, START_TIMEOUT_MS, 0)
    if reply and reply.result and not reply.err then
      return reply.result
    end
  end
  return require("mimo").status
end

--- A server this check just started is usually still loading its model: say so, and wait for it (bounded).
local function engine_status(client)
  local status = current_status(client)
  if status.state ~= nil and status.state ~= "loading" then
    return status
  end
  vim.health.info(
    "engine loading: model " .. tostring(status.model or "?") .. " (waiting up to " .. ENGINE_TIMEOUT_MS / 1000 .. " s)"
  )
  local deadline = vim.uv.hrtime() + ENGINE_TIMEOUT_MS * 1e6
  while (status.state == nil or status.state == "loading") and vim.uv.hrtime() < deadline do
    vim.wait(200) -- lets the server's notifications and replies in
    status = current_status(client)
  end
  return status
end

local function report_engine(status)
  local state = status.state or (status.backend and "ready")
  local model = tostring(status.model or "?")
  local fallback = status.fallback_reason or (state == "fallback" and status.message)
  if state == "ready" then
    vim.health.ok("engine reachable: model " .. model)
  elseif state == "fallback" then
    vim.health.warn("engine reachable through the local fallback: " .. tostring(fallback))
  elseif state == "error" then
    vim.health.error("engine failed: " .. tostring(status.message), { "check settings.engine in setup()" })
  elseif state == "loading" then
    vim.health.warn(
      "engine still loading after " .. ENGINE_TIMEOUT_MS / 1000 .. " s: model " .. model,
      { "a large model on a CPU can take longer: run :checkhealth mimo again, or see :LspLog" }
    )
  else
    vim.health.error("no engine state from the server (state: " .. tostring(state) .. ")", { "see :LspLog" })
  end
end

function M.check()
  vim.health.start("mimo")
  if vim.fn.has("nvim-0.11") == 0 then
    vim.health.error("Neovim 0.11 or newer is needed (vim.lsp.config / vim.lsp.enable)")
    return
  end
  local mimo = require("mimo")
  if not mimo.config then
    vim.health.error("require('mimo').setup() has not run")
    return
  end
  local mode = require("mimo.completion").mode(mimo.config)
  vim.health.info("completion mode: " .. mode .. " (Neovim " .. tostring(vim.version()) .. ")")
  if not check_executable(mimo.config.cmd) then
    return
  end
  local client = started_client()
  if client then
    report_engine(engine_status(client))
  end
end

return M
