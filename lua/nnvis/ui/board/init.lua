-- nnvis.ui.board — nv.board: the board, nnvis's own local TensorBoard (docs/board.md).  It
-- serves a page showing the TensorBoard event files under one or more log dirs (scalars,
-- histograms, images, text, hparams, projector embeddings, graphs), updated live.
--   local h = nv.board.serve{logdir = "runs"}        -- http://127.0.0.1:6006/
--   print(h.url); ...; h:close()
-- The server runs in a thread of its own with its own Lua state (nnvis.http), so the page keeps
-- answering while the script that opened it trains.
local http = require "nnvis.http"
local util = require "nnvis.tensor.util"

local M = {}

-- the handle serve() returns: h.url, h.port, h:close(), h:wait() (nnvis.ui.http_util's)
local U = require "nnvis.ui.http_util"
local Handle = U.handle_class("nnvis board")

local function quote(s) return string.format("%q", s) end

--- nv.board.serve{logdir = path or {paths...}, port = 6006 (0: a free one), host = "127.0.0.1"}
--- -> a handle h with h.url, h.port, h:close() and h:wait() (serves until Ctrl-C).  A host other
--- than the loopback prints that anyone who can reach the port can read the logs.
function M.serve(opts)
  if type(opts) == "string" then opts = { logdir = opts } end
  if type(opts) ~= "table" then util.raise("board.serve: give {logdir = path}, got " .. type(opts)) end
  opts = util.check_opts("board.serve", opts, { "logdir", "port", "host" })
  local dirs = opts.logdir
  if type(dirs) == "string" then dirs = { dirs } end
  if type(dirs) ~= "table" or #dirs == 0 then
    util.raise("board.serve: logdir must be a folder or a list of folders, got " .. type(opts.logdir))
  end
  local real = {}
  for i, d in ipairs(dirs) do
    if type(d) ~= "string" then util.raise("board.serve: logdir " .. i .. " is a " .. type(d) .. ", not a path") end
    local st = http.stat(d)
    if not st or st.type ~= "directory" then util.raise("board.serve: logdir '" .. d .. "' is not a folder") end
    real[i] = http.realpath(d)
  end
  local host, port = U.endpoint("board.serve", opts, 6006)
  local list = {}
  for i, d in ipairs(real) do list[i] = quote(d) end
  local config = "{logdirs = {" .. table.concat(list, ", ") .. "}}"
  local server, err = U.start(host, port, "nnvis.ui.board.server", config, "these logs")
  if not server then util.raise("board.serve: " .. err) end
  return setmetatable({ server = server, url = server.url, port = server.port, logdirs = real }, Handle)
end

return M
