-- nnvis.ui.view.server — the model viewer's request handler, run by nnvis.http in the server
-- thread's own Lua state (as the board's is, docs/board.md): init(config) once, then
-- handle(method, path, query) per request -> status, headers, body.  It serves the page
-- (page/: index.html, view.js, view.css, and the board's graph.js) and the folder
-- nnvis.ui.view.prepare wrote (graph.json, input.png, maps/<id>.png, cam/<id>.png), nothing
-- else: a path with `..`, a backslash, a NUL (also %-encoded) or whose real path leaves its
-- folder is 404.  It never requires nnvis.core.
local http = require "nnvis.http"
local U = require "nnvis.ui.http_util"

local M = {}

M.headers = U.headers      -- nnvis.http adds them to every response (CSP, nosniff)

local state = { dir = nil, page = nil, shared = nil }

--- init(config): config is a Lua table literal {dir = "the folder prepare() wrote" [, page = "page folder"]}
function M.init(config)
  local fn, err = load("return " .. (config ~= "" and config or "{}"), "=config", "t", {})
  if not fn then error("view config: " .. err, 0) end
  local cfg = fn()
  if type(cfg) ~= "table" or type(cfg.dir) ~= "string" then error("view config: give {dir = folder}", 0) end
  local dir = http.realpath(cfg.dir)
  if not dir then error("view config: no folder " .. cfg.dir, 0) end
  local here = U.here()
  state.dir = dir
  state.page = http.realpath(cfg.page or here .. "/page") or here .. "/page"
  state.shared = http.realpath(here .. "/../board/page") or here .. "/../board/page"
end

-- the page's own files, and graph.js, which the board's page shares
local SHARED = { ["graph.js"] = true }

--- handle(method, path, query) -> status, headers, body (the path as sent, still %-encoded)
function M.handle(method, path, query)
  if U.unsafe_path(path) then return U.not_found() end
  if path == "/" or path == "/index.html" then return U.serve_file(state.page .. "/index.html", state.page) end
  local name = path:match("^/static/([%w_][%w_%-%.]*)$")
  if name then
    if SHARED[name] then return U.serve_file(state.shared .. "/" .. name, state.shared) end
    return U.serve_file(state.page .. "/" .. name, state.page)
  end
  if path == "/data/graph.json" or path == "/data/input.png" then
    return U.serve_file(state.dir .. path:sub(6), state.dir)
  end
  local sub, id = path:match("^/data/(%a+)/(%d+)%.png$")
  if (sub == "maps" or sub == "cam") and #id <= 9 then
    return U.serve_file(state.dir .. "/" .. sub .. "/" .. id .. ".png", state.dir, "image/png")
  end
  return U.not_found()
end

return M
