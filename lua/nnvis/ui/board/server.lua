-- nnvis.ui.board.server — the board's request handler (docs/board.md), run by nnvis.http in
-- the server thread's own Lua state: init(config) once, then handle(method, path, query) per
-- request -> status, headers, body.  It serves the page's files, Debian's dygraphs and
-- markdown-it, the JSON API over the event files (nnvis.ui.board.events) and a run's
-- projector files, and nothing else: a path with `..`, a backslash, a NUL (also %-encoded)
-- or whose real path leaves the log dir is 404.  It never requires nnvis.core.
local http = require "nnvis.http"
local E = require "nnvis.ui.board.events"

local U = require "nnvis.ui.http_util"

local M = {}

-- added by nnvis.http to every response, its own 405 and 500 too
M.headers = U.headers

local VENDOR = {
  ["dygraph.min.js"] = "/usr/share/javascript/dygraphs/dygraph.min.js",
  ["dygraph.min.css"] = "/usr/share/javascript/dygraphs/dygraph.min.css",
  ["markdown-it.js"] = "/usr/share/javascript/markdown-it/markdown-it.js",
}
local MIME = U.MIME
local RESCAN = 1.0                  -- seconds between two reads of the log dirs

local state = { reader = nil, last = -math.huge, page = nil, cache = {} }

-- ---- JSON ---------------------------------------------------------------------------------
local json = require "nnvis.io.json"
local function array(t) return setmetatable(t or {}, json.array_mt) end
M.array = array
local NULL = json.null                      -- null where a key must be present
M.null = NULL

--- json(v) -> JSON text (nnvis.io.json, with <, > and & escaped as well)
function M.json(v) return json.encode(v, true) end

-- ---- responses (nnvis.ui.http_util's, shared with the viewer's handler) --------------------
local reply, not_found, read_all, unescape, escape, unsafe = U.reply, U.not_found, U.read_file, U.unescape, U.escape, U.unsafe
M.escape = escape
local function json_reply(v, status) return reply(status or 200, "application/json", M.json(v)) end
local function api_error(status, msg) return json_reply({ error = msg }, status) end

-- ---- init and polling -----------------------------------------------------------------------
--- init(config): config is a Lua table literal {logdirs = {...}}
function M.init(config)
  local fn, err = load("return " .. (config ~= "" and config or "{}"), "=config", "t", {})
  if not fn then error("board config: " .. err, 0) end
  local cfg = fn()
  local dirs = cfg.logdirs or {}
  if type(dirs) == "string" then dirs = { dirs } end
  state.reader = E.new(dirs)
  local here = U.here()
  state.page = (http.realpath(here .. "/page") or here .. "/page")
  state.last = -math.huge
  state.cache = {}
end

local function poll()
  local now = http.now()
  if now - state.last >= RESCAN then
    state.last = now
    state.reader:poll()
  end
  return state.reader
end

-- ---- the API --------------------------------------------------------------------------------
local function keys(t)
  local out = array()
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function api_runs(r)
  local runs = array()
  for _, name in ipairs(r.order) do
    local run = r.runs[name]
    runs[#runs + 1] = { name = name, scalars = keys(run.scalars), histograms = keys(run.histograms),
      images = keys(run.images), text = keys(run.text), hparams = run.hparams ~= nil,
      projector = run.projector, graph = run.graph or NULL }
  end
  local logdirs = array()
  for i, ld in ipairs(r.logdirs) do logdirs[i] = ld.path end
  local warnings = array()
  for i, w in ipairs(r.warnings) do warnings[i] = w end
  return { version = r.version, logdirs = logdirs, runs = runs, warnings = warnings }
end

-- sorts a column by step once (stable: ties keep their order of arrival)
local function sort_column(col)
  if col.sorted then return end
  local idx = {}
  for i = 1, col.n do idx[i] = i end
  local step = col.step
  table.sort(idx, function(a, b) if step[a] ~= step[b] then return step[a] < step[b] end return a < b end)
  local s, w, v = {}, {}, {}
  for i, j in ipairs(idx) do s[i], w[i], v[i] = step[j], col.wall[j], col.value[j] end
  col.step, col.wall, col.value, col.sorted = s, w, v, true
end

--- downsample(col, points) -> {step, wall, value, min, max, downsampled}: with more than
--- `points` points, buckets of equal step range, each giving its last point and its min and max
function M.downsample(col, points)
  sort_column(col)
  local n, step, wall, value = col.n, col.step, col.wall, col.value
  local S, W, V, MN, MX = array(), array(), array(), array(), array()
  if n <= points then
    table.move(step, 1, n, 1, S)
    table.move(wall, 1, n, 1, W)
    table.move(value, 1, n, 1, V)
    table.move(value, 1, n, 1, MN)
    table.move(value, 1, n, 1, MX)
    return { step = S, wall = W, value = V, min = MN, max = MX, downsampled = false }
  end
  local s0 = step[1]
  local width = (step[n] - s0 + 1) / points
  local k, cur, lo, hi = 0, nil, math.huge, -math.huge
  local floor = math.floor
  for i = 1, n do
    local b = floor((step[i] - s0) / width)
    if b ~= cur then
      if cur then
        MN[k], MX[k] = lo <= hi and lo or 0 / 0, lo <= hi and hi or 0 / 0
      end
      k, cur, lo, hi = k + 1, b, math.huge, -math.huge
    end
    local x = value[i]
    if x < lo then lo = x end                -- NaN compares false: it moves neither bound
    if x > hi then hi = x end
    S[k], W[k], V[k] = step[i], wall[i], x
  end
  MN[k], MX[k] = lo <= hi and lo or 0 / 0, lo <= hi and hi or 0 / 0
  return { step = S, wall = W, value = V, min = MN, max = MX, downsampled = true }
end

local function api_scalars(r, q)
  local run = r.runs[q.run or ""]
  if not run then return api_error(404, "no run " .. tostring(q.run)) end
  local col = run.scalars[q.tag or ""]
  if not col then return api_error(404, "no scalar tag " .. tostring(q.tag) .. " in run " .. q.run) end
  local points = math.tointeger(tonumber(q.points or "2000")) or 2000
  if points < 2 then points = 2 elseif points > 100000 then points = 100000 end
  local key = q.run .. "\0" .. q.tag .. "\0" .. points
  local c = state.cache[key]
  if not (c and c.rev == col.rev and c.n == col.n) then
    local d = M.downsample(col, points)
    d.run, d.tag = q.run, q.tag
    c = { rev = col.rev, n = col.n, body = M.json(d) }
    state.cache[key] = c
  end
  return reply(200, "application/json", c.body)
end

-- the items of a run's tag, or nil and the message of a 404
local function tagged(r, q, kind)
  local run = r.runs[q.run or ""]
  if not run then return nil, "no run " .. tostring(q.run) end
  local items = run[kind][q.tag or ""]
  if not items then return nil, "no " .. kind .. " tag " .. tostring(q.tag) .. " in run " .. q.run end
  return items
end

-- /api/<kind>?run=&tag=: {items = [row(item) ...]} for the run's tag, or a 404
local function items_api(kind, row)
  return function(r, q)
    local items, err = tagged(r, q, kind)
    if not items then return api_error(404, err) end
    local out = array()
    for i, it in ipairs(items) do out[i] = row(it) end
    return json_reply({ items = out })
  end
end

local api_histograms = items_api("histograms", function(h)
  return { step = h.step, wall = h.wall, min = h.min, max = h.max, num = h.num, sum = h.sum,
           limits = array(h.limits), counts = array(h.counts) }
end)

local api_images = items_api("images", function(im)
  return { step = im.step, wall = im.wall, index = im.index, width = im.width, height = im.height, mime = im.mime }
end)

local function api_image(r, q)
  local items, err = tagged(r, q, "images")
  if not items then return api_error(404, err) end
  local im = items[math.tointeger(tonumber(q.index or "")) or 0]
  if not im then return api_error(404, "no image " .. tostring(q.index)) end
  if im.mime ~= "image/png" and im.mime ~= "image/jpeg" then return not_found() end
  return reply(200, im.mime, im.data, { ["Cache-Control"] = "max-age=3600" })
end

local api_text = items_api("text", function(t) return { step = t.step, wall = t.wall, text = t.text } end)

local function last_value(col)
  if not col or col.n == 0 then return nil end
  sort_column(col)
  return col.value[col.n]
end

local function api_hparams(r)
  local names, seen_name, metrics, seen_metric = array(), {}, array(), {}
  local specs = {}            -- metric tag -> group (sub-run) it lives in
  for _, name in ipairs(r.order) do
    local e = r.runs[name].experiment
    if e then
      for _, h in ipairs(e.hparams) do
        if h and not seen_name[h] then seen_name[h] = true; names[#names + 1] = h end
      end
      for _, m in ipairs(e.metrics) do
        if not seen_metric[m.tag] then seen_metric[m.tag] = true; metrics[#metrics + 1] = m.tag; specs[m.tag] = m.group end
      end
    end
  end
  local runs = array()
  for _, name in ipairs(r.order) do
    local run = r.runs[name]
    if run.hparams then
      for _, h in ipairs(keys(run.hparams)) do
        if not seen_name[h] then seen_name[h] = true; names[#names + 1] = h end
      end
      if #metrics == 0 or not next(specs) then
        for _, t in ipairs(keys(run.scalars)) do
          if not seen_metric[t] then seen_metric[t] = true; metrics[#metrics + 1] = t end
        end
      end
    end
  end
  for _, name in ipairs(r.order) do
    local run = r.runs[name]
    if run.hparams then
      local mv = {}
      for _, t in ipairs(metrics) do
        local g = specs[t]
        local src = (g and g ~= "") and r.runs[name .. "/" .. g] or run
        mv[t] = last_value(src and src.scalars[t] or run.scalars[t])
      end
      runs[#runs + 1] = { run = name, hparams = run.hparams, metrics = mv }
    end
  end
  return json_reply({ hparams = names, metrics = metrics, runs = runs })
end

local function count_tsv(path)
  local s = read_all(path)
  if not s then return nil end
  local rows = select(2, s:gsub("\n", "\n"))
  if #s > 0 and s:sub(-1) ~= "\n" then rows = rows + 1 end
  local line = s:match("^[^\n]*") or ""
  local cols = select(2, line:gsub("\t", "\t")) + 1
  return rows, cols
end

local function files_url(run, rel) return "/files/" .. escape(run.name) .. "/" .. escape(rel) end

local function api_projector(r, q)
  local run = r.runs[q.run or ""]
  if not run then return api_error(404, "no run " .. tostring(q.run)) end
  local embs, err = E.projector(run)
  if not embs then return api_error(404, err) end
  local out = array()
  for _, e in ipairs(embs) do
    if e.tensor_path and not unsafe(e.tensor_path) then
      local shape
      if e.tensor_shape and #e.tensor_shape == 2 then shape = array({ e.tensor_shape[1], e.tensor_shape[2] })
      else
        local n, d = count_tsv(run.dir .. "/" .. e.tensor_path)
        shape = n and array({ n, d }) or NULL
      end
      local sprite = NULL
      if e.sprite and e.sprite.image_path and not unsafe(e.sprite.image_path) then
        sprite = { path = files_url(run, e.sprite.image_path), single_image_dim = array(e.sprite.single_image_dim or {}) }
      end
      out[#out + 1] = { name = e.name, shape = shape, tensor = files_url(run, e.tensor_path),
        metadata = e.metadata_path and not unsafe(e.metadata_path) and files_url(run, e.metadata_path) or NULL,
        sprite = sprite }
    end
  end
  return json_reply({ embeddings = out })
end

local function api_graph(r, q)
  local run = r.runs[q.run or ""]
  if not run then return api_error(404, "no run " .. tostring(q.run)) end
  if run.graph == "nnvis" then return json_reply({ kind = "nnvis", svg = run.graph_svg }) end
  if run.graph == "graphdef" then
    local nodes = array()
    for i, n in ipairs(run.graph_nodes) do
      nodes[i] = { name = n.name, op = n.op, inputs = array(n.inputs), device = n.device, attrs = n.attrs }
    end
    return json_reply({ kind = "graphdef", nodes = nodes })
  end
  return api_error(404, "run " .. q.run .. " has no graph")
end

local API = { runs = function(r) return json_reply(api_runs(r)) end, scalars = api_scalars, histograms = api_histograms, images = api_images,
              image = api_image, text = api_text, hparams = api_hparams, projector = api_projector, graph = api_graph }

-- ---- files ----------------------------------------------------------------------------------
local ext_of, serve_file = U.ext_of, U.serve_file

-- /files/<run>/<name>: only the files the run's projector config names, and the config itself
local function projector_file(r, rest)
  local enc_run, enc_name = rest:match("^([^/]+)/(.+)$")
  if not enc_run then return not_found() end
  local run = r.runs[unescape(enc_run)]
  if not run or not run.projector then return not_found() end
  local name = unescape(enc_name)
  if unsafe(name) then return not_found() end
  local allowed = { ["projector_config.pbtxt"] = true }
  for _, e in ipairs(E.projector(run) or {}) do
    if e.tensor_path then allowed[e.tensor_path] = true end
    if e.metadata_path then allowed[e.metadata_path] = true end
    if e.sprite and e.sprite.image_path then allowed[e.sprite.image_path] = true end
  end
  if not allowed[name] then return not_found() end
  local mime = MIME[ext_of(name)]
  if mime == "image/png" or mime == "image/jpeg" then
    local f = io.open(run.dir .. "/" .. name, "rb")
    local head = f and f:read(8) or ""
    if f then f:close() end
    mime = (head:sub(1, 8) == "\137PNG\r\n\26\n" and "image/png") or (head:sub(1, 3) == "\255\216\255" and "image/jpeg") or nil
    if not mime then return not_found() end
  end
  return serve_file(run.dir .. "/" .. name, run.logdir.real, mime or "text/plain; charset=utf-8")
end

--- handle(method, path, query) -> status, headers, body (path and query values as sent, %-encoded)
function M.handle(method, path, query)
  if U.unsafe_path(path) then return not_found() end
  local q = {}
  for k, v in pairs(query or {}) do q[unescape(k, true)] = unescape(v, true) end
  if path == "/" or path == "/index.html" then
    return serve_file(state.page .. "/index.html", state.page)
  end
  local name = path:match("^/static/([%w_][%w_%-%.]*)$")
  if name then return serve_file(state.page .. "/" .. name, state.page) end
  name = path:match("^/vendor/([%w_%-%.]+)$")
  if name then
    local v = VENDOR[name]
    if not v then return not_found() end
    local body = read_all(v)
    if not body then return not_found("not installed: " .. v .. " (make deps installs it)") end
    return reply(200, MIME[ext_of(v)], body, { ["Cache-Control"] = "no-cache" })
  end
  local rest = path:match("^/files/(.+)$")
  if rest then return projector_file(poll(), rest) end
  local api = path:match("^/api/([%w_]+)$")
  if api and API[api] then return API[api](poll(), q) end
  return not_found()
end

return M
