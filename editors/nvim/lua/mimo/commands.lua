-- User commands: :MimoToggle, :MimoStatus, :MimoReview.
local M = {}

function M.create()
  local mimo = require("mimo")
  vim.api.nvim_create_user_command("MimoToggle", mimo.toggle, { desc = "Enable or disable mimo completions" })
  vim.api.nvim_create_user_command("MimoStatus", function()
    print(mimo.status_line())
  end, { desc = "Show mimo's server and engine state" })
  vim.api.nvim_create_user_command("MimoReview", mimo.review, { desc = "Review this file's uncommitted changes" })
end

return M
