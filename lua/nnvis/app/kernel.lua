-- nnvis.app.kernel — the Lua side of the Jupyter kernel (jupyter/nnvis_kernel/kernel.py).
-- The Python kernel (Debian's ipykernel speaks the Jupyter protocol) starts one `lua5.4`
-- running main() and talks to it over two pipes whose descriptors NNVIS_KERNEL_FDS names
-- ("read,write"):
--   requests  (Python -> Lua)  "<kind> <n>\n" then n bytes of payload; kind is
--             execute (payload "<count>\n<code>"), complete (the word before the cursor),
--             inspect (a dotted name), is_complete (code) or shutdown
--   messages  (Lua -> Python)  "<n>\n" then n bytes of a JSON object with a `type`:
--             ready, stream {name, text}, display {data, metadata, display_id, update},
--             result {data, metadata}, error {ename, evalue, traceback}, done {status},
--             reply {matches | found, text}
-- Cells run in one Lua state with `nv` loaded (globals persist; a `local` at the start of a
-- line is made global so that it persists too).  The values of a cell's last expression are
-- its result; a trailing `;` hides it.  print, io.write and io.stdout / io.stderr send
-- stream messages at once; nv.show sends display data (images as PNG, summaries as HTML).
-- SIGINT (Python forwards the interrupt) stops the running code through the debug hook
-- that nnvis.readline's interrupts(true) sets, as the REPL does.
local M = {}
local I = require "nnvis.app.introspect"
local D = require "nnvis.app.doc"

-- ---- JSON (encoding only: requests are plain framed text): nnvis.io.json -------------------
local json = require "nnvis.io.json"
M.array_mt = json.array_mt   -- marks an empty table that encodes as [] rather than {}
--- a Lua value as JSON text (nnvis.io.json.encode)
M.json = json.encode

-- ---- the channel -----------------------------------------------------------------------------
local rd, wr   -- the request and message pipes

local function send(msg)
  local s = M.json(msg)
  wr:write(#s, "\n", s)
  wr:flush()
end

-- a read that a stray SIGINT (EINTR, or the interrupt hook firing on return) does not end
local function read_retry(what)
  for _ = 1, 1000 do
    local ok, r, err = pcall(rd.read, rd, what)
    if ok and r then return r end
    if ok and not err then return nil end                       -- end of input
    if ok and not tostring(err):find("nterrupted", 1, true) then return nil end
  end
  return nil
end

local function read_request()
  local head = read_retry("l")
  if not head then return nil end
  local kind, n = head:match("^(%S+) (%d+)$")
  if not kind then return nil end
  n = tonumber(n)
  local parts, got = {}, 0
  while got < n do
    local s = read_retry(n - got)
    if not s then return nil end
    parts[#parts + 1] = s
    got = got + #s
  end
  return kind, table.concat(parts)
end

-- ---- output: print, io.write, io.stdout and io.stderr become stream messages -----------------
local function stream_file(name)
  local f = {}
  function f.write(self, ...)
    local parts = table.pack(...)
    for i = 1, parts.n do
      local v = parts[i]
      if type(v) ~= "string" and type(v) ~= "number" then
        error(string.format("bad argument #%d to 'write' (string expected, got %s)", i, type(v)), 2)
      end
      parts[i] = tostring(v)
    end
    local s = table.concat(parts, "", 1, parts.n)
    if s ~= "" then send { type = "stream", name = name, text = s } end
    return self
  end
  function f.flush(self) return self end
  function f.setvbuf() return true end
  function f.close() return nil, "cannot close the notebook's " .. name end
  function f.seek() return nil, "cannot seek the notebook's " .. name end
  function f.lines() error(name .. " is not readable in the notebook", 2) end
  function f.read() return nil, name .. " is not readable in the notebook" end
  return setmetatable(f, { __name = "FILE*", __tostring = function() return "file (notebook " .. name .. ")" end })
end

local function install_output()
  local out, err = stream_file("stdout"), stream_file("stderr")
  -- what still reaches the real stdout (io.output():write, C code) goes out unbuffered; the
  -- Python kernel streams it too
  io.stdout:setvbuf("no")
  io.stdout, io.stderr = out, err
  _G.print = function(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, n do parts[i] = tostring((select(i, ...))) end
    out:write(table.concat(parts, "\t", 1, n), "\n")
  end
  io.write = function(...) return out:write(...) end
end

-- ---- values as Jupyter mimebundles ------------------------------------------------------------
local nv = require "nnvis"
local show = require "nnvis.draw.show"

local MAX_LINES = 60

local function abbreviate(s) return I.abbreviate(s, MAX_LINES, 45) end


local pretty = I.pretty

local function text_of(v)
  local mt = getmetatable(v)
  if mt and mt.__tostring then return abbreviate(tostring(v)) end
  if type(v) == "table" then return pretty(v, 1, {}) end
  return tostring(v)
end

-- a tensor that looks like a picture: (C,H,W) with 1, 3 or 4 channels, at least 8x8, in [0,1]
local function looks_like_image(t)
  if t:dim() ~= 3 then return false end
  local c = t:size(1)
  if not (c == 1 or c == 3 or c == 4) or t:size(2) < 8 or t:size(3) < 8 then return false end
  local ok, lo, hi = pcall(function() return t:min():item(), t:max():item() end)
  return ok and lo >= 0 and hi <= 1
end

-- the mimebundle of a figure: its own, with the PNG at the size nv.show would show it; the
-- SVG only when opts.svg (front ends prefer it to the PNG, and nbconvert's HTML export
-- empties an SVG output, its sanitizer knowing none of SVG's elements)
local function figure_data(fig, opts)
  local b = fig:mimebundle()
  local data = { ["text/plain"] = b["text/plain"] or fig:describe() }
  local img = show.sized_image(fig, opts or {})
  data["image/png"] = show.base64(nv.core.png_encode(img))
  if b["text/html"] then data["text/html"] = b["text/html"] end
  if b["image/svg+xml"] and opts and opts.svg then data["image/svg+xml"] = b["image/svg+xml"] end
  return data, { ["image/png"] = { width = img:size(3), height = img:size(2) } }
end

-- the html method of an object of a class (its metatable's __index table), as IPython asks
-- for _repr_html_; nil for anything else (never a lazy __index function: nv's loads modules)
local function html_method(v)
  local mt = type(v) == "table" and getmetatable(v)
  local index = type(mt) == "table" and rawget(mt, "__index")
  local f = type(index) == "table" and index.html
  return type(f) == "function" and f or nil
end

--- the Jupyter data of a value: {["text/plain"] = ...} always, image/png for figures and
--- image tensors, text/html when the value has an HTML form (a summary, layer statistics:
--- an object whose class has an html method); and its metadata
function M.mimebundle(v)
  if nv.figure.is_figure(v) then return figure_data(v) end
  local html = html_method(v)
  if html then
    local ok, h = pcall(html, v)
    if ok and type(h) == "string" then return { ["text/plain"] = text_of(v), ["text/html"] = h }, {} end
  end
  if getmetatable(v) == nv.core.tensor_mt then
    local labelled = nv.figure.label_of(v) ~= nil
    if labelled or looks_like_image(v) then
      local fig = nv.figure.of(v)
      local data, meta = figure_data(fig)
      if not labelled then data["text/plain"] = text_of(v) end
      return data, meta
    end
  end
  return { ["text/plain"] = text_of(v) }, {}
end

-- ---- display: nv.show in a cell, and updates in place -----------------------------------------
local shown_ids = {}   -- display ids shown during the running cell
local auto_id = 0

local Handle = {}
Handle.__index = Handle
Handle.__name = "nnvis.display"
function Handle.__tostring(h) return "[nnvis display " .. h.display_id .. "]" end

--- replaces the display's picture in place (update_display_data)
function Handle:update(x, opts)
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.display_id, o.update = self.display_id, true
  return show(x, o)
end

-- the display target nv.show calls: display_data, or update_display_data when opts.update is
-- set or the id was already shown in this cell; returns a handle with :update(x)
local function display(_, opts, fig)
  opts = opts or {}
  local id = opts.display_id
  if id == nil then auto_id = auto_id + 1; id = string.format("nnvis-%d-%d", os.time(), auto_id) end
  id = tostring(id)
  local data, meta = figure_data(fig, opts)
  local update = opts.update or shown_ids[id] or false
  shown_ids[id] = true
  send { type = "display", data = data, metadata = meta, display_id = id, update = update }
  return setmetatable({ display_id = id }, Handle)
end

-- ---- running a cell ---------------------------------------------------------------------------
local SELF = debug.getinfo(1, "S").short_src

local function traceback(e)
  local msg = e
  if type(e) ~= "string" then
    local mt = getmetatable(e)
    if mt and mt.__tostring then msg = tostring(e)
    elseif type(e) == "table" then msg = "(error object) " .. pretty(e, 1, {})
    else msg = "(error object is a " .. type(e) .. " value)" end
  end
  local lines = {}
  for l in debug.traceback(msg, 2):gmatch("[^\n]+") do
    if l:find(SELF, 1, true) or l:find("in function 'xpcall'", 1, true) then break end
    lines[#lines + 1] = l
  end
  while lines[#lines] and lines[#lines]:find("(...tail calls...)", 1, true) do lines[#lines] = nil end
  if lines[#lines] == "stack traceback:" then lines[#lines] = nil end
  return { message = msg, lines = lines }
end

--- compiles a cell: a function f(pack) that returns pack(values of its last expression) when
--- the cell ends with one (not a tail call, so that tracebacks keep the cell's line), or
--- runs it as statements; nil, message on a syntax error
function M.compile(code, name)
  code = I.unlocal(code)
  local lines = {}
  for l in (code .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  while #lines > 0 and (lines[#lines]:match("^%s*$") or lines[#lines]:match("^%s*%-%-[^%[]")
                        or lines[#lines]:match("^%s*%-%-$")) do
    lines[#lines] = nil
  end
  for k = #lines, math.max(1, #lines - 40), -1 do
    local head = table.concat(lines, "\n", 1, k - 1)
    local tail = table.concat(lines, "\n", k, #lines):gsub(";%s*$", "")
    if not tail:match("^%s*return[%s;]") and not tail:match("^%s*return$") and load(head, name, "t") then
      local f = load((k > 1 and head .. "\n" or "") .. "return (...)(" .. tail .. "\n)", name, "t")
      if f then return f end
    end
  end
  return load(code, name, "t")
end


local function pack(...) return setmetatable(table.pack(...), Packed) end

local function execute(payload)
  local count, code = payload:match("^(%d*)\n(.*)$")
  code = code or payload
  shown_ids = {}
  if code:match("^%s*%?") then   -- ?name: help, ??name: a Lua function's source, as in the REPL
    local src, name = code:match("^%s*%?(%??)%s*(.-)%s*$")
    local text = src == "?" and D.source(I.resolve(name, _G)) or M.help(name)
    io.stdout:write(text or (name .. (src == "?" and " has no Lua source" or " is nil")), "\n")
    return "ok"
  end
  local f, err = M.compile(code, "=In[" .. (count or "") .. "]")
  if not f then
    send { type = "error", ename = "SyntaxError", evalue = err, traceback = { err } }
    return "error"
  end
  local quiet = code:match(";%s*$") ~= nil
  local res = table.pack(xpcall(f, traceback, pack))
  if not res[1] then
    local e = res[2]
    local ename = e.message:match("interrupted$") and "Interrupted" or "LuaError"
    send { type = "error", ename = ename, evalue = e.message, traceback = e.lines }
    return "error"
  end
  if quiet then return "ok" end
  local vals = {}
  -- nil, and the handle nv.show returns (its picture is already shown), show nothing
  local src, first, last = res, 2, res.n
  if res.n == 2 and getmetatable(res[2]) == Packed then src, first, last = res[2], 1, res[2].n end
  for i = first, last do
    if src[i] ~= nil and getmetatable(src[i]) ~= Handle then vals[#vals + 1] = src[i] end
  end
  if src[first] ~= nil then _G._ = src[first] end   -- `_` is the last result, as in the REPL
  for i, v in ipairs(vals) do
    local ok, data, meta = xpcall(M.mimebundle, traceback, v)
    if not ok then
      send { type = "error", ename = "LuaError", evalue = data.message, traceback = data.lines }
      return "error"
    end
    send { type = i == #vals and "result" or "display", data = data, metadata = meta }
  end
  return "ok"
end

-- ---- completion and inspection ----------------------------------------------------------------


--- the completions of a word (`nv.ca` -> `nv.cam`, `m:pa` -> `m:parameters`): globals and
--- keywords, or the fields and methods of what the word before the last . or : names
function M.complete(word) return I.complete(word, _G) end


--- help for a dotted name (nv.cam.gradcam): a function's signature and its doc comment (the
--- `---` lines docs/API.md is made of), a table's fields, a value's type; nil when it is nil
function M.help(name) return D.help(name, _G) end

-- ---- the loop ---------------------------------------------------------------------------------
local handlers = {}

function handlers.execute(payload)
  local ok, status = xpcall(execute, traceback, payload)
  if not ok then
    send { type = "error", ename = "KernelError", evalue = status.message, traceback = status.lines }
    status = "error"
  end
  send { type = "done", status = status }
end

function handlers.complete(word)
  local ok, matches = pcall(M.complete, word)
  send { type = "reply", matches = setmetatable(ok and matches or {}, M.array_mt) }
end

function handlers.inspect(name)
  local ok, text = pcall(M.help, name)
  send { type = "reply", found = ok and text ~= nil, text = ok and text or nil }
end

function handlers.is_complete(code)
  local f, err = load(code, "=cell", "t")
  if not f then f = load("return " .. code, "=cell", "t") end
  local status = f and "complete" or (tostring(err):find("<eof>$") and "incomplete" or "invalid")
  send { type = "reply", status = status }
end

--- runs the kernel's Lua side: reads requests from the pipes NNVIS_KERNEL_FDS names until
--- shutdown or end of input (the Python kernel starts it; see the top of this file)
function M.main()
  local fds = os.getenv("NNVIS_KERNEL_FDS") or ""
  local rfd, wfd = fds:match("^(%d+),(%d+)$")
  if not rfd then error("nnvis.kernel: NNVIS_KERNEL_FDS must name the request and message pipes (r,w)") end
  rd = assert(io.open("/dev/fd/" .. rfd, "rb"))
  wr = assert(io.open("/dev/fd/" .. wfd, "wb"))
  wr:setvbuf("full")
  _G.nv = nv
  install_output()
  show.set_display(display)
  local ok_rl, rl = pcall(require, "nnvis.readline")
  -- Ctrl-C (SIGINT from the Python kernel) stops the running code with "interrupted";
  -- left on between cells so that a late one never kills the process
  if ok_rl then rl.interrupts(true) end
  send { type = "ready", version = nv.version, lua = _VERSION, interrupts = ok_rl }
  while true do
    local ok, kind, payload = pcall(read_request)
    if ok and not kind then break end
    if ok then
      if kind == "shutdown" then break end
      local h = handlers[kind]
      local hok = pcall(function()
        if h then h(payload) else send { type = "reply", error = "unknown request " .. kind } end
      end)
      if not hok and kind == "execute" then pcall(send, { type = "done", status = "error" }) end
    end
    if ok_rl then pcall(rl.interrupts, true) end   -- clears a hook a late SIGINT left set
  end
end

return M
