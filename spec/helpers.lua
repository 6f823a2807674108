-- Shared spec helpers: tolerant comparisons and central-difference gradient checks.
local nv = require "nnvis"
local H = {}

--- max |a - b| over all elements of two tensors (or nested tables / numbers)
function H.maxdiff(a, b)
  if type(a) == "number" then a = nv.tensor(a) end
  if type(b) == "number" then b = nv.tensor(b) end
  if type(a) == "table" and getmetatable(a) == nil then a = nv.tensor(a) end
  if type(b) == "table" and getmetatable(b) == nil then b = nv.tensor(b) end
  return (a - b):abs():max():item()
end

--- f() with nv.config(opts) in force, the settings before restored after (also on error);
--- returns f's results
function H.with_config(opts, f)
  local before, was = nv.config(), {}
  for k in pairs(opts) do was[k] = before[k] end
  nv.config(opts)
  local r = table.pack(pcall(f))
  nv.config(was)
  if not r[1] then error(r[2], 0) end
  return table.unpack(r, 2, r.n)
end

--- asserts that two tensors agree to tol (absolute + relative)
function H.close(a, b, tol, msg)
  tol = tol or 1e-5
  if type(b) == "table" and getmetatable(b) == nil then b = nv.tensor(b) end
  if type(a) == "table" and getmetatable(a) == nil then a = nv.tensor(a) end
  assert(table.concat(a:shape(), "x") == table.concat(b:shape(), "x"),
    (msg or "") .. " shape " .. table.concat(a:shape(), "x") .. " vs " .. table.concat(b:shape(), "x"))
  local scale = math.max(1, b:abs():max():item())
  local d = H.maxdiff(a, b)
  assert(d <= tol * scale, string.format("%s max difference %g > %g", msg or "", d, tol * scale))
end

--- Central-difference gradient check of f(inputs...) with respect to each input: the
--- library's nv.gradcheck (opts: eps 1e-2, tol = relative 1e-2, atol 2e-3).
function H.gradcheck(f, inputs, opts)
  opts = opts or {}
  return nv.gradcheck(f, inputs, { eps = opts.eps, rtol = opts.tol, atol = opts.atol })
end

--- a tensor of the given shape with values spread away from 0 (avoids kinks of relu/abs)
function H.away_from_zero(...)
  local t = nv.rand(...) * 1.5 + 0.25
  local s = nv.rand(...):gt(0.5) * 2 - 1
  return (t * s):detach()
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
-- base64 text (padding and line breaks allowed) back to bytes
function H.unbase64(s)
  local out, bits, n = {}, 0, 0
  for ch in s:gmatch("[%w+/]") do
    bits = bits << 6 | (B64:find(ch, 1, true) - 1)
    n = n + 6
    if n >= 8 then n = n - 8; out[#out + 1] = string.char(bits >> n & 255) end
  end
  return table.concat(out)
end

-- a file of little-endian float32 (numpy's tofile) as a tensor of the given shape
function H.read_floats(path, shape)
  local b = H.read_all(path)
  local v = {}
  for i = 1, #b // 4 do v[i] = string.unpack("<f", b, 4 * i - 3) end
  return require("nnvis").tensor(v):view(shape)
end

-- whether path holds a PNG file (its signature)
function H.is_png(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local head = f:read(8)
  f:close()
  return head == "\137PNG\r\n\26\n"
end

-- a whole file's bytes
function H.read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- runs a shell command as a fresh user's shell would: without the sanitizer runtimes `make
-- test SANITIZE=1` preloads (the compilers, LuaRocks and browsers a spec starts are not
-- instrumented and fail under them), without make's variables (SANITIZE=1 would reach the
-- rock's build) and without the checkout's LUA_PATH / LUA_CPATH (so an installed rock is
-- what loads): ok, output (stdout and stderr), exit code
--- H.missing(why): a spec whose outside dependency (a Debian package) is absent.  Run by hand
--- it is pending; under `make test`, which installs every dependency first (make deps) and
--- sets NNVIS_REQUIRE_DEPS=1, it fails: a skip there would hide a broken setup.
function H.missing(why)
  if os.getenv("NNVIS_REQUIRE_DEPS") == "1" then
    error(why .. " (make test ran make deps, which installs it: this is a failure)", 0)
  end
  require("busted").pending(why)
end

--- H.it_if(ok, what): `it` when ok, else an `it` whose spec is H.missing (needs `what`).
function H.it_if(ok, what)
  if ok then return require("busted").it end
  return function(name) H.missing(name .. " (needs " .. what .. ")") end
end

-- the shell prefix that starts a command without the sanitizer runtimes and the checkout's
-- settings (H.sh uses it; io.popen(H.CLEAN .. cmd, "w") for a command that reads stdin)
H.CLEAN = "unset LD_PRELOAD ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS LUA_PATH LUA_CPATH MAKEFLAGS MFLAGS MAKELEVEL " ..
  "SANITIZE NNVIS_BUILD; "

function H.sh(cmd)
  local p = io.popen(H.CLEAN .. cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

return H
