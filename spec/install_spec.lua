-- The LuaRocks install path and the OpenBLAS kernel choice, checked in child processes.
local nv = require "nnvis"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

describe("nnvis installation", function()
  it("installs with luarocks make into a fresh tree and loads from any directory", function()
    local tree = os.tmpname()
    os.remove(tree)
    local ok, out = sh("luarocks --lua-version=5.4 --tree '" .. tree .. "' make rockspec/nnvis-scm-1.rockspec")
    assert(ok, out)
    local ok2, out2 = sh("cd / && eval \"$(luarocks --lua-version=5.4 --tree '" .. tree .. "' path)\" && " ..
      "env -u LUA_PATH_5_4 lua5.4 -e 'local nv = require \"nnvis\"; print(nv.tensor{1,2,3}:sum():item(), type(nv.onnx.load))'")
    -- the REPL is installed as the nnvis command, and runs with the installed modules only
    local ok3, out3 = sh("cd / && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 '" .. tree ..
      "/bin/nnvis' -e 'print(1+1)' -e 'print(package.searchpath(\"nnvis.readline\", package.cpath))'")
    sh("rm -rf '" .. tree .. "'")
    assert(ok2, out2)
    assert.truthy(out2:find("6.0\tfunction", 1, true), out2)
    assert(ok3, out3)
    assert.truthy(out3:find("^2\n"), out3)
    assert.truthy(out3:find(tree, 1, true), out3)
  end)
end)

describe("nnvis.config", function()
  it("reports the BLAS core and thread count, and sets the thread count", function()
    local cfg = nv.config()
    assert.is_string(cfg.blas_core)
    assert.is_true(cfg.threads >= 1)
    assert.equal(1, nv.config { threads = 1 }.threads)
    nv.config { threads = cfg.threads }
  end)

  it("chooses OpenBLAS' AVX-512 kernels itself when OPENBLAS_CORETYPE is unset", function()
    local cpuinfo = io.open("/proc/cpuinfo"):read("a")
    local avx512 = cpuinfo:find("avx512f") and cpuinfo:find("avx512bw") and cpuinfo:find("avx512vl")
      and cpuinfo:find("avx512dq")
    local ok, out = sh("env -u OPENBLAS_CORETYPE lua5.4 -e 'local c = require(\"nnvis\").config(); " ..
      "print(c.blas_core, c.blas_core_chosen_by_nnvis)'")
    assert(ok, out)
    if avx512 then
      assert.truthy(out:find("SkylakeX\ttrue", 1, true), out)
    else
      assert.truthy(out:find("false", 1, true), out)
    end
  end)

  it("respects an OPENBLAS_CORETYPE the user set", function()
    local ok, out = sh("env OPENBLAS_CORETYPE=Haswell lua5.4 -e 'local c = require(\"nnvis\").config(); " ..
      "print(c.blas_core, c.blas_core_chosen_by_nnvis)'")
    assert(ok, out)
    assert.truthy(out:find("Haswell\tfalse", 1, true), out)
  end)
end)
