-- fuzz/structured/run.lua — the structured fuzzer's runner: loads each case with nnvis's
-- readers (nv.load_pth for .pth, nv.onnx.load for .onnx, then runs a loaded ONNX model on
-- random inputs of its declared shapes, half the time with the graph recorded and the
-- gradient of its outputs' sum run back) and says how each went:
--     BEGIN <case>
--     END <case> ok | nil <message> | error <message> | internal <message>
-- "nil" is a reader's refusal (nil, message); "error" a raised error, fine when it is about
-- the data; "internal" is a Lua error from inside nnvis that a file must never cause
-- ("attempt to index a nil value", "bad argument", "stack overflow", ..., or a position in
-- nnvis's lua/ files in an error that does not name its ONNX node; with --strict a position
-- is internal even then).  fuzz/structured/drive.py runs this under ASan+UBSan
-- with fuzz/structured/tripwire.so preloaded, and treats a crash, a sanitizer report, a
-- missing END (a hang) and an "internal" END as failures.
--
-- Usage: lua5.4 fuzz/structured/run.lua [--seed K] [--max-alloc BYTES] [--strict]
--          [--hang-report S] [case ...]
--   Without case arguments the case paths are read from standard input, one a line.  A case
--   is a file (model.onnx, x.pth) inside its own folder, the only folder it may touch: while
--   it runs, the tripwire (when preloaded) aborts on an open outside that folder or an exec.
--   --tripwire-selftest: arm the tripwire for the first case's folder and open /etc/passwd
--   (the driver expects the abort).  --hang-report S: a case still running Lua code after S
--   seconds prints its Lua traceback to stderr (once), for the driver's hang report.
local nv = require "nnvis"
local core = nv.core
-- everything the readers use, loaded before the tripwire is armed: a require opens files
local pth = require "nnvis.io.pth"
local onnx = require "nnvis.nn.onnx"
require "nnvis.nn.onnx_ops"
require "nnvis.io.pickle"
require "nnvis.nn"
require "nnvis.tensor.functional"
require "nnvis.tensor.util"

local seed, max_alloc, selftest, strict, hang_report = os.time(), 1 << 30, false, false, nil
local cases = {}
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--seed" then seed = assert(tonumber(arg[i + 1]), "--seed N"); i = i + 1
    elseif a == "--max-alloc" then max_alloc = assert(math.tointeger(tonumber(arg[i + 1])), "--max-alloc BYTES"); i = i + 1
    elseif a == "--tripwire-selftest" then selftest = true
    elseif a == "--strict" then strict = true
    elseif a == "--hang-report" then hang_report = assert(tonumber(arg[i + 1]), "--hang-report S"); i = i + 1
    else cases[#cases + 1] = a end
    i = i + 1
  end
end
math.randomseed(seed)
nv.manual_seed(seed)
nv.config { max_alloc = max_alloc }

-- Warm-up: oneDNN and OpenMP load their kernels, read the CPU's description and start their
-- threads on first use; all of that must happen before the tripwire is armed.
do
  local x = nv.randn { 1, 3, 8, 8 }
  local w = nv.randn { 4, 3, 3, 3 }
  local y = nv.conv2d(x, w, nil, { padding = 1 })
  y = nv.max_pool2d(y, 2)
  local z = nv.softmax(y:reshape { 1, -1 }, 2)
  z = nv.matmul(z, nv.randn { z:size(2), 3 })
  nv.randn { 2, 3 }:relu():sum()
  local m = nv.nn.Conv2d(3, 2, 3)
  m(x):sum():backward()
end

local cwd = os.getenv("PWD") or "."
local function absolute(p) return p:sub(1, 1) == "/" and p or cwd .. "/" .. p end
local function folder(p) return p:match("^(.*)/[^/]*$") or "." end
local armed   -- the folder the tripwire allows, while a case runs
local function arm(case)
  armed = absolute(folder(case))
  io.open("/nnvis-tripwire/arm/" .. armed)
end
local function disarm()
  armed = nil
  io.open("/nnvis-tripwire/disarm")
end

-- A module nnvis loads on first use opens nnvis's own files, which is not the case's doing:
-- the tripwire is off for the time of a require.
local real_require = require
function require(name)   -- luacheck: ignore (the runner's own global)
  local was = armed
  if was then io.open("/nnvis-tripwire/disarm") end
  local r = table.pack(pcall(real_require, name))
  if was then io.open("/nnvis-tripwire/arm/" .. was) end
  if not r[1] then error(r[2], 2) end
  return table.unpack(r, 2, r.n)
end

if selftest then
  arm(cases[1] or (cwd .. "/x"))
  local f = io.open("/etc/passwd")
  disarm()
  print("tripwire: not armed (/etc/passwd opened: " .. tostring(f ~= nil) .. ")")
  os.exit(3)
end

-- a Lua error from inside nnvis, which no file may cause
local INTERNAL = { "attempt to", "bad argument", "stack overflow", "a nil value", "table index is",
                   "number has no integer representation" }
local function is_internal(msg)
  for _, p in ipairs(INTERNAL) do
    if msg:find(p, 1, true) then return true end
  end
  -- a position in nnvis's own files: an error raised by a check meant for programmers, or a
  -- bug; one that names its ONNX node ("onnx: node X (Op): ..." from the op, "path (Op): ..."
  -- from the module that ran it) is about the data, a shape that does not fit
  if not msg:find("nnvis/[%w_]+%.lua:%d+:") then return false end
  if strict then return true end
  return not (msg:find("^onnx: node ") or msg:find("^[^\n]- %(%w+%): "))
end

local function oneline(s)
  s = tostring(s):gsub("\r?\n", "\\n")
  if #s > 2000 then s = s:sub(1, 2000) .. "...(" .. #s .. " bytes)" end
  return s
end

-- ONNX graph inputs that no initializer feeds: their declared shapes, made concrete (a
-- symbolic size gets one small value wherever its name appears, an unknown one any)
local function input_shapes(path)
  local desc = core.onnx_read(path)
  if not desc then return nil end
  local inits = {}
  for _, e in ipairs(desc.initializers) do inits[e.name] = true end
  local shapes, symbols = {}, {}
  for _, v in ipairs(desc.inputs) do
    if not inits[v.name] then
      local s, n = {}, 1
      for k, d in ipairs(v.shape or {}) do
        if math.type(d) ~= "integer" or d <= 0 then
          local sym = type(d) == "string" and d ~= "?" and d ~= "" and d or nil
          d = sym and symbols[sym] or math.random(1, 4)
          if sym then symbols[sym] = d end
        end
        s[k] = d
        n = n * d
        if n > (1 << 22) then return nil end   -- a shape too big to be worth running
      end
      shapes[#shapes + 1] = s
    end
  end
  return shapes
end

local function run_onnx(path)
  local model, err = onnx.load(path)
  if not model then return "nil", err end
  local ok, e = pcall(function()
    local _ = tostring(model)
    model:state_dict()
    for _ in model:named_modules() do end
  end)
  if not ok then return "error", e end
  local shapes = input_shapes(path)
  if not shapes then return "ok", "(inputs too large to run)" end
  local inputs = {}
  ok, e = pcall(function()
    for k, s in ipairs(shapes) do inputs[k] = #s == 0 and nv.tensor(math.random()) or nv.randn(s) end
  end)
  if not ok then return "ok", "(inputs of these shapes cannot be made: " .. tostring(e) .. ")" end
  local grad = math.random(2) == 1
  ok, e = pcall(function()
    if grad then   -- with the graph recorded, and the gradient of the outputs' sum run back
      local outs = table.pack(model(table.unpack(inputs, 1, #shapes)))
      local total
      for k = 1, outs.n do
        local o = outs[k]
        if getmetatable(o) == core.tensor_mt and o.requires_grad and o:numel() > 0 then
          total = total and total + o:sum() or o:sum()
        end
      end
      if total then total:backward() end
      return outs
    end
    return nv.no_grad(function() return table.pack(model(table.unpack(inputs, 1, #shapes))) end)
  end)
  if not ok then return "error", e end
  return "ok", ""
end

local function run_pth(path)
  local ok, v, err = pcall(pth.load, path)
  if not ok then return "error", v end
  if v == nil then return "nil", err end
  return "ok", ""
end

-- a count hook that tells where a case spends too long (a loop in Lua that never ends)
local function watch(case)
  if not hang_report then return end
  local t0, told = nv.now(), false
  debug.sethook(function()
    if not told and nv.now() - t0 > hang_report then
      told = true
      io.stderr:write(string.format("run.lua: %s still running after %.1f s\n%s\n", case, hang_report,
        debug.traceback("hang traceback:", 2)))
      io.stderr:flush()
    end
  end, "", 100000)
end

local function run(case)
  io.stdout:write("BEGIN ", case, "\n")
  io.stdout:flush()
  watch(case)
  -- each case from the same seed, so `run.lua --seed K case` reruns it alone
  math.randomseed(seed)
  nv.manual_seed(seed)
  arm(case)
  local status, msg
  if case:match("%.onnx$") then
    local ok, s, m = pcall(run_onnx, case)
    if ok then status, msg = s, m else status, msg = "error", s end
  else
    status, msg = run_pth(case)
  end
  collectgarbage()   -- the case's finalizers run before its END
  debug.sethook()
  disarm()
  msg = oneline(msg or "")
  if status ~= "ok" and is_internal(msg) then status = "internal" end
  io.stdout:write("END ", case, " ", status, msg ~= "" and (" " .. msg) or "", "\n")
  io.stdout:flush()
  return status
end

local internal = 0
if #cases > 0 then
  for _, c in ipairs(cases) do
    if run(c) == "internal" then internal = internal + 1 end
  end
else
  for line in io.stdin:lines() do
    if line ~= "" and run(line) == "internal" then internal = internal + 1 end
  end
end
os.exit(internal == 0 and 0 or 1)
