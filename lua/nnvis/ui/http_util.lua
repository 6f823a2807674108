-- nnvis.ui.http_util — what the handlers nnvis.http runs (the board's, the viewer's) share: the
-- headers every response carries (CSP, nosniff), MIME types, %-decoding, the refusal of paths
-- that could leave a folder, and files served only from inside their folder (symlinks resolved)
-- with a size cap.  Runs in the server thread's own Lua state: it needs nnvis.http (stat,
-- realpath), never nnvis.core.  Also the handle serve() gives the caller (handle_class).
local http = require "nnvis.http"

local M = {}

--- headers: added by nnvis.http to every response of a handler that sets handler.headers to it
M.headers = {
  ["Content-Security-Policy"] = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " ..
    "img-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; " ..
    "form-action 'none'; frame-ancestors 'none'",
  ["X-Content-Type-Options"] = "nosniff",
  ["Referrer-Policy"] = "no-referrer",
}

M.MIME = { html = "text/html; charset=utf-8", js = "text/javascript; charset=utf-8", css = "text/css; charset=utf-8",
           svg = "image/svg+xml", png = "image/png", jpg = "image/jpeg", jpeg = "image/jpeg", json = "application/json",
           tsv = "text/tab-separated-values; charset=utf-8", txt = "text/plain; charset=utf-8",
           pbtxt = "text/plain; charset=utf-8", map = "application/json" }

M.MAX_FILE = 256 << 20      -- the largest file served

--- ext_of(name) -> the extension, lower case ("" without one)
function M.ext_of(name) return (name:match("%.([%w]+)$") or ""):lower() end

--- unescape(s [, plus]): %XX decoded (and + as a space in query values)
function M.unescape(s, plus)
  if plus then s = s:gsub("+", " ") end
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- escape(s): every byte but [A-Za-z0-9-._~] as %XX
function M.escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

--- unsafe(s) -> truthy when a path may lead where it should not: .. (also %2e%2e, and again once
--- decoded), a backslash, a NUL or another control character, a %-encoded backslash or percent
function M.unsafe(s)
  local l = s:lower()
  return s:find("..", 1, true) or s:find("\\", 1, true) or s:find("%c") or l:find("%2e", 1, true)
    or l:find("%5c", 1, true) or l:find("%00", 1, true) or l:find("%25", 1, true)
end

--- unsafe_path(path): unsafe() of a request path as sent and decoded (%2f read as a slash)
function M.unsafe_path(path)
  return M.unsafe(M.unescape(path)) or M.unsafe((path:gsub("%%2[fF]", "/")))
end

--- inside(real, root) -> is the resolved path `real` the folder `root` or under it?
function M.inside(real, root)
  return real == root or real:sub(1, #root + 1) == root .. "/" or root == "/"
end

--- read_file(path [, limit]) -> the bytes of a regular file of at most `limit` bytes (MAX_FILE), or nil
function M.read_file(path, limit)
  local st = http.stat(path)
  if not st or st.type ~= "file" or st.size > (limit or M.MAX_FILE) then return nil end
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- reply(status, content_type, body [, extra_headers]) -> status, headers, body (not cached)
function M.reply(status, ctype, body, extra)
  local h = { ["Content-Type"] = ctype, ["Cache-Control"] = "no-store" }
  for k, v in pairs(extra or {}) do h[k] = v end
  return status, h, body
end

--- not_found([what]) -> a plain-text 404
function M.not_found(what) return M.reply(404, "text/plain; charset=utf-8", (what or "not found") .. "\n") end

--- serve_file(path, root [, mime]) -> the file as a response when its real path lies inside the
--- (resolved) folder root, else a 404; the MIME type from its extension unless given
function M.serve_file(path, root, mime)
  local real = http.realpath(path)
  if not real or not M.inside(real, root) then return M.not_found() end
  local body = M.read_file(real)
  if not body then return M.not_found() end
  return M.reply(200, mime or M.MIME[M.ext_of(real)] or "application/octet-stream", body, { ["Cache-Control"] = "no-cache" })
end

--- here(level) -> the folder of the calling file (for a handler's page folder beside it)
function M.here(level)
  local src = debug.getinfo((level or 1) + 1, "S").source:gsub("^@", "")
  return src:match("^(.*)/[^/]*$") or "."
end

-- ---- in the caller's state: where a serve() listens, and the handle it returns ----------------
local LOOPBACK = { ["127.0.0.1"] = true, ["localhost"] = true, ["::1"] = true }

--- endpoint(fname, opts, default_port) -> host, port: opts.host (default 127.0.0.1) and
--- opts.port (an integer in 0..65535, 0: a free one) checked, raising naming fname
function M.endpoint(fname, opts, default_port)
  local port = opts.port == nil and default_port or math.tointeger(opts.port)
  if not port or port < 0 or port > 65535 then
    error(string.format("%s: port must be an integer in 0..65535 (0: a free port), got %s", fname, tostring(opts.port)), 3)
  end
  local host = opts.host or "127.0.0.1"
  if type(host) ~= "string" then error(fname .. ": host must be a string, got " .. type(host), 3) end
  return host, port
end

--- start(host, port, handler, config, what) -> nnvis.http's server, or nil, message; a host
--- other than the loopback is said on stderr: anyone who can reach the port can see `what`
function M.start(host, port, handler, config, what)
  local server, err = http.serve { host = host, port = port, handler = handler, config = config }
  if not server then return nil, err end
  if not LOOPBACK[host] then
    io.stderr:write(string.format("nnvis: listening on %s: anyone who can reach port %d can see %s\n", host, server.port, what))
  end
  return server
end

--- handle_class(what) -> the metatable of the handle nv.board.serve and nv.view.serve return:
--- h.server (nnvis.http's), h.url; h:close() stops the server (idempotent) and then calls
--- h:on_close() when set; h:wait() serves until Ctrl-C (SIGINT, raised by Lua in the running
--- code), then closes, raising other errors again; tostring names `what` and the URL
function M.handle_class(what)
  local H = {}
  H.__index = H
  function H:close()
    if self.server then self.server:close(); self.server = nil end
    if self.on_close then self:on_close(); self.on_close = nil end
  end
  H.__close = H.close
  H.__gc = H.close
  function H:__tostring()
    return string.format("[%s %s%s]", what, self.url, self.server and "" or " (closed)")
  end
  function H:wait()
    local ok, err = pcall(function()
      while self.server do http.sleep(0.25) end
    end)
    self:close()
    if not ok and not tostring(err):find("interrupted", 1, true) then error(err, 0) end
    return true
  end
  return H
end

return M
