-- nnvis.ui.board.events — the board's reader of TensorBoard event files (docs/board.md),
-- incremental: each poll finds the runs under the log dirs (a run is a folder holding
-- *tfevents* files, found recursively) and reads every file on from where the last poll
-- stopped, so a file that grows is read on, and a record cut at the end waits for its rest.
--   local E = require "nnvis.ui.board.events"
--   local r = E.new({ "/tmp/logs" })
--   r:poll()                      -- true when something new was read (r.version grows)
--   local col = r.runs["lr0.1/train"].scalars["epoch_loss"]   -- {step = {}, wall = {}, value = {}}
-- The framing, the CRCs and the scalars (nearly all of a log) are read in C (nnvis.http.scan);
-- the rest (images, histograms, text, hparams, graphs) is decoded here.  It runs in the
-- server thread's own Lua state, so it never requires nnvis.core.
local http = require "nnvis.http"

local M = {}

local MAX_DEPTH = 32              -- folders below a log dir that are searched for runs
local MAX_WARNINGS = 200          -- the most recent ones are kept
local MAX_IMAGE_BYTES = 512 << 20 -- image bytes kept per reader; past it, images are dropped
local MAX_GRAPH_NODES = 100000

-- ---- protocol buffers ---------------------------------------------------------------------
-- pb(s) -> {field = {values...}}: varints as integers, fixed64 as doubles, fixed32 as floats,
-- length-delimited fields as strings.  Malformed bytes raise (callers pcall per event).
local sunpack, sbyte = string.unpack, string.byte
local function pb(s)
  local out, i, n = {}, 1, #s
  local function varint()
    local v, shift = 0, 0
    repeat
      if i > n or shift > 63 then error("truncated varint", 0) end
      local b = sbyte(s, i)
      i = i + 1
      v = v | ((b & 0x7F) << shift)
      shift = shift + 7
    until b < 0x80
    return v
  end
  while i <= n do
    local k = varint()
    local field, wire = k >> 3, k & 7
    local v
    if wire == 0 then v = varint()
    elseif wire == 1 then
      if i + 7 > n then error("truncated fixed64", 0) end
      v = sunpack("<d", s, i); i = i + 8
    elseif wire == 5 then
      if i + 3 > n then error("truncated fixed32", 0) end
      v = sunpack("<f", s, i); i = i + 4
    elseif wire == 2 then
      local len = varint()
      if len < 0 or i + len - 1 > n then error("truncated field", 0) end
      v = s:sub(i, i + len - 1); i = i + len
    else error("bad wire type " .. wire, 0) end
    local list = out[field]
    if not list then list = {}; out[field] = list end
    list[#list + 1] = v
  end
  return out
end
M.pb = pb

local function first(t, f) local l = t[f]; return l and l[1] end

-- repeated doubles/floats, packed (a string) or not (numbers)
local function reals(list, fmt, size)
  local out = {}
  for _, v in ipairs(list or {}) do
    if type(v) == "string" then
      for j = 1, #v - size + 1, size do out[#out + 1] = sunpack(fmt, v, j) end
    else
      out[#out + 1] = v
    end
  end
  return out
end

-- a TensorProto's numbers (float, double, int) as a flat list
local DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64 = 1, 2, 3, 9
local function tensor_numbers(t)
  local dtype = first(t, 1) or 0
  local content = first(t, 4)
  if content then
    local f = ({ [DT_FLOAT] = { "<f", 4 }, [DT_DOUBLE] = { "<d", 8 }, [DT_INT32] = { "<i4", 4 },
                 [DT_INT64] = { "<i8", 8 } })[dtype]
    if not f then return {} end
    return reals({ content }, f[1], f[2])
  end
  if t[5] then return reals(t[5], "<f", 4) end
  if t[6] then return reals(t[6], "<d", 8) end
  local out = {}
  for _, v in ipairs(t[7] or {}) do
    if type(v) == "string" then          -- packed varints: decoded as a message of field 0
      local j = 1
      while j <= #v do
        local x, shift = 0, 0
        repeat
          local b = sbyte(v, j)
          j = j + 1
          x = x | ((b & 0x7F) << shift)
          shift = shift + 7
        until b < 0x80 or j > #v
        out[#out + 1] = x
      end
    else out[#out + 1] = v end
  end
  return out
end

local function mime_of(bytes)
  if bytes:sub(1, 8) == "\137PNG\r\n\26\n" then return "image/png" end
  if bytes:sub(1, 3) == "\255\216\255" then return "image/jpeg" end
end

-- ---- the reader --------------------------------------------------------------------------
local Reader = {}
Reader.__index = Reader

--- new(logdirs) -> a reader of the runs under each log dir (absolute paths to folders)
function M.new(logdirs)
  local self = setmetatable({ logdirs = {}, runs = {}, order = {}, version = 0, warnings = {},
                              image_bytes = 0 }, Reader)
  for _, d in ipairs(logdirs) do
    local real = http.realpath(d) or d
    self.logdirs[#self.logdirs + 1] = { path = d, real = real, name = real:match("([^/]+)/*$") or real }
  end
  return self
end

function Reader:warn(msg)
  local w = self.warnings
  w[#w + 1] = msg
  if #w > MAX_WARNINGS then table.remove(w, 1) end
  self.changed = true
end

local function new_run(name, dir, logdir)
  return { name = name, dir = dir, logdir = logdir, files = {}, scalars = {}, histograms = {}, images = {},
           text = {}, plugin = {}, hparams = nil, graph = nil, projector = false }
end

-- is real (a resolved path) the folder root or inside it? (nnvis.ui.http_util's)
local inside = require("nnvis.ui.http_util").inside
M.inside = inside

-- every folder under a log dir holding event files -> {rel = {files...}}; symlinks are followed
-- only where they stay inside the log dir, and each real folder is visited once
local function discover(ld)
  local found, seen = {}, {}
  local function walk(dir, rel, depth)
    local real = http.realpath(dir)
    if not real or seen[real] or not inside(real, ld.real) then return end
    seen[real] = true
    local names = http.listdir(dir)
    if not names then return end
    table.sort(names)
    local files
    for _, name in ipairs(names) do
      local p = dir .. "/" .. name
      local st = http.stat(p)
      if st and st.type == "file" and name:find("tfevents", 1, true) then
        local rp = http.realpath(p)
        if rp and inside(rp, ld.real) then
          files = files or {}
          files[#files + 1] = p
        end
      elseif st and st.type == "directory" and depth < MAX_DEPTH then
        walk(p, rel == "" and name or rel .. "/" .. name, depth + 1)
      end
    end
    if files then found[rel] = files end
  end
  walk(ld.path, "", 0)
  return found
end

--- poll() -> true when anything new was read: finds new runs and files, reads what was appended
function Reader:poll()
  self.changed = false
  local several = #self.logdirs > 1
  for _, ld in ipairs(self.logdirs) do
    for rel, files in pairs(discover(ld)) do
      local name
      if several then name = rel == "" and ld.name or ld.name .. "/" .. rel
      else name = rel == "" and "." or rel end
      local run = self.runs[name]
      if not run then
        run = new_run(name, rel == "" and ld.path or ld.path .. "/" .. rel, ld)
        self.runs[name] = run
        self.order[#self.order + 1] = name
        table.sort(self.order)
        self.changed = true
      end
      for _, path in ipairs(files) do self:read_file(run, path) end
      local pst = http.stat(run.dir .. "/projector_config.pbtxt")
      local has = pst ~= nil and pst.type == "file"
      if has ~= run.projector then run.projector = has; self.changed = true end
    end
  end
  if self.changed then self.version = self.version + 1 end
  return self.changed
end

function Reader:read_file(run, path)
  local f = run.files[path]
  if not f then
    f = { offset = 0, short = path:match("[^/]*$") }
    run.files[path] = f
  end
  local st = http.stat(path)
  if not st then return end
  if st.size < f.offset then
    self:warn(string.format("file %s/%s: shrank from %d to %d bytes; read on from its end", run.name, f.short, f.offset, st.size))
    f.offset = st.size
    return
  end
  if st.size == f.offset then return end
  local res, err = http.scan(path, f.offset)
  if not res then self:warn(err); return end
  for _, w in ipairs(res.warnings) do self:warn(string.format("file %s/%s: %s", run.name, f.short, w)) end
  if res.offset ~= f.offset then self.changed = true end
  f.offset = res.offset
  for tag, c in pairs(res.scalars) do self:add_scalars(run, tag, c) end
  for _, ev in ipairs(res.events) do
    local ok, e = pcall(self.event, self, run, ev)
    if not ok then
      self:warn(string.format("file %s/%s: event at byte %d could not be read (%s), skipped", run.name, f.short, ev.offset, tostring(e)))
    end
  end
end

-- appends columns (C's result) to a run's tag; sorted stays true while steps never go down
function Reader:add_scalars(run, tag, c)
  local col = run.scalars[tag]
  if not col then
    col = { step = {}, wall = {}, value = {}, n = 0, sorted = true, rev = 0 }
    run.scalars[tag] = col
  end
  local k = #c.step
  if k == 0 then return end
  if col.n > 0 and c.step[1] < col.step[col.n] then col.sorted = false end
  if not c.sorted then col.sorted = false end
  table.move(c.step, 1, k, col.n + 1, col.step)
  table.move(c.wall, 1, k, col.n + 1, col.wall)
  table.move(c.value, 1, k, col.n + 1, col.value)
  col.n = col.n + k
  col.rev = col.rev + 1
  self.changed = true
end

local function scalar_point(self, run, tag, step, wall, value)
  self:add_scalars(run, tag, { step = { step }, wall = { wall }, value = { value }, sorted = true })
end

local function push(self, run, kind, tag, item)
  local t = run[kind]
  local list = t[tag]
  if not list then list = {}; t[tag] = list end
  list[#list + 1] = item
  self.changed = true
end

local function add_image(self, run, tag, ev, bytes, width, height)
  local mime = mime_of(bytes)
  if not mime then
    self:warn(string.format("run %s: image %q at step %d is neither PNG nor JPEG, skipped", run.name, tag, ev.step))
    return
  end
  if self.image_bytes + #bytes > MAX_IMAGE_BYTES then
    if not self.image_cap_warned then
      self.image_cap_warned = true
      self:warn(string.format("run %s: over %d MB of images, later ones are not kept", run.name, MAX_IMAGE_BYTES >> 20))
    end
    return
  end
  self.image_bytes = self.image_bytes + #bytes
  local list = run.images[tag]
  push(self, run, "images", tag, { step = ev.step, wall = ev.wall, index = list and #list + 1 or 1,
    width = width, height = height, mime = mime, data = bytes })
end

-- HParamsPluginData: experiment (2) lists hparams and metrics, session_start_info (3) a run's values
local function hparams(self, run, content)
  local d = pb(content)
  local exp = first(d, 2)
  if exp then
    local e = pb(exp)
    local names, metrics = {}, {}
    for _, hi in ipairs(e[4] or {}) do names[#names + 1] = first(pb(hi), 1) end
    for _, mi in ipairs(e[5] or {}) do
      local mn = first(pb(mi), 1)
      if mn then
        local m = pb(mn)
        metrics[#metrics + 1] = { group = first(m, 1) or "", tag = first(m, 2) or "" }
      end
    end
    run.experiment = { hparams = names, metrics = metrics }
    self.changed = true
  end
  local ssi = first(d, 3)
  if ssi then
    local s = pb(ssi)
    local hp = {}
    for _, entry in ipairs(s[1] or {}) do
      local kv = pb(entry)
      local key, val = first(kv, 1), first(kv, 2)
      if key and val then
        local v = pb(val)
        if v[2] then hp[key] = v[2][1]
        elseif v[3] then hp[key] = v[3][1]
        elseif v[4] then hp[key] = v[4][1] ~= 0 end
      end
    end
    run.hparams = hp
    run.group = first(s, 4)
    self.changed = true
  end
end

-- a TF2-style histogram tensor: shape (k, 3) of (left, right, count)
local function histogram_tensor(t)
  local v = tensor_numbers(t)
  local k = #v // 3
  if k == 0 then return nil end
  local limits, counts, num = {}, {}, 0
  for i = 1, k do
    limits[i] = v[3 * i - 1]
    counts[i] = v[3 * i]
    num = num + v[3 * i]
  end
  return { min = v[1], max = v[3 * k - 1], num = num, limits = limits, counts = counts }
end

local function value(self, run, ev, v)
  local tag = first(v, 1)
  if not tag then return end
  local meta = first(v, 9)
  local plugin, content
  if meta then
    local pd = first(pb(meta), 1)
    if pd then
      local p = pb(pd)
      plugin, content = first(p, 1), first(p, 2)
      if plugin then run.plugin[tag] = plugin end
    end
  end
  plugin = plugin or run.plugin[tag]
  if plugin == "hparams" then
    if content then hparams(self, run, content) end
    return
  end
  if v[2] then return scalar_point(self, run, tag, ev.step, ev.wall, v[2][1]) end
  local img = first(v, 4)
  if img then
    local im = pb(img)
    local bytes = first(im, 4)
    if bytes then add_image(self, run, tag, ev, bytes, first(im, 2), first(im, 1)) end
    return
  end
  local h = first(v, 5)
  if h then
    local d = pb(h)
    push(self, run, "histograms", tag, { step = ev.step, wall = ev.wall, min = first(d, 1), max = first(d, 2),
      num = first(d, 3), sum = first(d, 4), limits = reals(d[6], "<d", 8), counts = reals(d[7], "<d", 8) })
    return
  end
  local tb = first(v, 8)
  if not tb then return end
  local t = pb(tb)
  if plugin == "text" or (plugin == nil and t[8] and (first(t, 1) or 0) == 7) then
    local text = table.concat(t[8] or {}, "\n\n")
    if tag == "nnvis/graph_svg" then
      run.graph, run.graph_svg = "nnvis", text
      self.changed = true
      return
    end
    return push(self, run, "text", tag, { step = ev.step, wall = ev.wall, text = text })
  elseif plugin == "images" then
    local s = t[8] or {}
    local w, hh = tonumber(s[1]), tonumber(s[2])
    for i = 3, #s do add_image(self, run, tag, ev, s[i], w, hh) end
  elseif plugin == "histograms" then
    local item = histogram_tensor(t)
    if item then
      item.step, item.wall = ev.step, ev.wall
      push(self, run, "histograms", tag, item)
    end
  elseif plugin == nil or plugin == "scalars" then
    local nums = tensor_numbers(t)
    if #nums == 1 then scalar_point(self, run, tag, ev.step, ev.wall, nums[1] + 0.0) end
  end
end

-- GraphDef: node (1) = NodeDef {name 1, op 2, input 3, device 4, attr 5 (map to AttrValue)}
local function shape_text(s)
  local dims = {}
  for _, d in ipairs(pb(s)[2] or {}) do dims[#dims + 1] = tostring(first(pb(d), 1) or "?") end
  return "[" .. table.concat(dims, ",") .. "]"
end

local function attr_value(a)
  local v = pb(a)
  if v[2] then return v[2][1] end
  if v[3] then return v[3][1] end
  if v[4] then return v[4][1] end
  if v[5] then return v[5][1] ~= 0 end
  if v[6] then return "dtype " .. v[6][1] end
  if v[7] then return shape_text(v[7][1]) end
  if v[8] then return "<tensor>" end
  if v[1] then
    local l, out = pb(v[1][1]), {}
    for _, s in ipairs(l[2] or {}) do out[#out + 1] = s end
    for _, x in ipairs(l[3] or {}) do
      if type(x) == "string" then out[#out + 1] = "<packed>" else out[#out + 1] = x end
    end
    for _, x in ipairs(reals(l[4], "<f", 4)) do out[#out + 1] = x end
    for _, s in ipairs(l[7] or {}) do out[#out + 1] = shape_text(s) end
    return out
  end
  return nil
end

local function graph_def(self, run, bytes)
  local g = pb(bytes)
  local nodes = {}
  for i, nb in ipairs(g[1] or {}) do
    if i > MAX_GRAPH_NODES then
      self:warn(string.format("run %s: graph over %d nodes, the rest is left out", run.name, MAX_GRAPH_NODES))
      break
    end
    local n = pb(nb)
    local attrs = {}
    for _, entry in ipairs(n[5] or {}) do
      local kv = pb(entry)
      local k, av = first(kv, 1), first(kv, 2)
      if k and av then attrs[k] = attr_value(av) end
    end
    nodes[#nodes + 1] = { name = first(n, 1) or "", op = first(n, 2) or "", inputs = n[3] or {}, device = first(n, 4), attrs = attrs }
  end
  if run.graph ~= "nnvis" then run.graph = "graphdef" end
  run.graph_nodes = nodes
  self.changed = true
end

-- an Event the C scanner handed over whole: decodes its graph and every Summary.Value
function Reader:event(run, ev)
  local e = pb(ev.data)
  local g = first(e, 4)
  if g then graph_def(self, run, g) end
  for _, summ in ipairs(e[5] or {}) do
    for _, vb in ipairs(pb(summ)[1] or {}) do value(self, run, ev, pb(vb)) end
  end
end

-- ---- projector_config.pbtxt -----------------------------------------------------------------
-- a protobuf text format parser for the projector's config: name -> {values} (strings,
-- numbers, nested messages as tables)
local function pbtxt(s)
  local i, n = 1, #s
  local function skip()
    while i <= n do
      local c = s:sub(i, i)
      if c:match("%s") then i = i + 1
      elseif c == "#" then i = (s:find("\n", i, true) or n) + 1
      else break end
    end
  end
  local function message(close)
    local out = {}
    while true do
      skip()
      if i > n then
        if close then error("unclosed message", 0) end
        return out
      end
      if s:sub(i, i) == "}" then
        if not close then error("unexpected }", 0) end
        i = i + 1
        return out
      end
      local name = s:match("^[%a_][%w_]*", i)
      if not name then error("bad token at " .. i, 0) end
      i = i + #name
      skip()
      if s:sub(i, i) == ":" then i = i + 1; skip() end
      local v
      local c = s:sub(i, i)
      if c == "{" then i = i + 1; v = message(true)
      elseif c == '"' or c == "'" then
        local j, buf = i + 1, {}
        while true do
          local ch = s:sub(j, j)
          if ch == "" then error("unclosed string", 0) end
          if ch == c then break end
          if ch == "\\" then
            local nx = s:sub(j + 1, j + 1)
            buf[#buf + 1] = ({ n = "\n", t = "\t", r = "\r" })[nx] or nx
            j = j + 2
          else
            buf[#buf + 1] = ch
            j = j + 1
          end
        end
        v = table.concat(buf)
        i = j + 1
      else
        local tok = s:match("^[^%s{}#]+", i)
        if not tok then error("bad value at " .. i, 0) end
        i = i + #tok
        v = tonumber(tok) or tok
      end
      out[name] = out[name] or {}
      table.insert(out[name], v)
    end
  end
  return message(false)
end
M.pbtxt = pbtxt

--- projector(run) -> {{name, tensor_path, metadata_path, sprite = {image_path, single_image_dim}, shape}}, or nil, message
function M.projector(run)
  local f = io.open(run.dir .. "/projector_config.pbtxt", "rb")
  if not f then return nil, "no projector_config.pbtxt" end
  local text = f:read(1 << 20) or ""
  f:close()
  local ok, cfg = pcall(pbtxt, text)
  if not ok then return nil, "projector_config.pbtxt: " .. tostring(cfg) end
  local out = {}
  for _, e in ipairs(cfg.embeddings or {}) do
    if type(e) == "table" then
      local sp = e.sprite and e.sprite[1]
      out[#out + 1] = {
        name = e.tensor_name and e.tensor_name[1] or tostring(#out + 1),
        tensor_path = e.tensor_path and e.tensor_path[1],
        metadata_path = e.metadata_path and e.metadata_path[1],
        tensor_shape = e.tensor_shape,
        sprite = type(sp) == "table" and { image_path = sp.image_path and sp.image_path[1],
                                            single_image_dim = sp.single_image_dim } or nil,
      }
    end
  end
  return out
end

return M
