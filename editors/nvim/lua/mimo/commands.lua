-- User commands: :MimoToggle, :MimoStatus, :MimoReview.
local M = {}

function M.create()
  local mimo = require("mimo")
  vim.api.nvim_create_user_command("MimoToggle", mimo.toggle, { desc = "Turn mimo completions on or off" })
  vim.api.nvim_create_user_command("MimoStatus", function()
    vim.api.nvim_echo({ { mimo.status_line() } }, true, {})
  end, { desc = "Show mimo's server and engine state" })
  vim.api.nvim_create_user_command("MimoReview", mimo.review, { desc = "Review this buffer's uncommitted changes" })
end

return M
