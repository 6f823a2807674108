-- The LuaRocks install path and the OpenBLAS kernel choice, checked in child processes.
local nv = require "nnvis"

local sh = require("helpers").sh

-- a command in this process's environment (the checkout's module, sanitizers included; the
-- leak check is left to the suite's own process, since Lua unloads the module at exit and
-- LeakSanitizer then cannot tell its allocations from another library's)
local function sh_here(cmd)
  local p = io.popen('ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" ' .. cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

describe("nnvis installation", function()
  it("installs with luarocks make into a fresh tree and loads from any directory", function()
    local tree = os.tmpname()
    os.remove(tree)
    local ok, out = sh("rm -rf build/portable && luarocks --lua-version=5.4 --tree '" .. tree .. "' make rockspec/nnvis-scm-1.rockspec")
    assert(ok, out)
    local ok2, out2 = sh("cd / && eval \"$(luarocks --lua-version=5.4 --tree '" .. tree .. "' path)\" && " ..
      "env -u LUA_PATH_5_4 -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY lua5.4 -e 'local nv = require \"nnvis\"; " ..
      "print(nv.tensor{1,2,3}:sum():item(), type(nv.onnx.load), nv.config().omp_spincount)'")
    assert(ok2, out2)
    assert.truthy(out2:find("6.0\tfunction\t10000", 1, true), out2)   -- nnvis.ompenv installed too
    -- portable: the rock is compiled without -march=native
    assert.truthy(out:find("-std=c11", 1, true), out)
    assert.is_nil(out:find("march=native", 1, true), "luarocks built with -march=native")
    -- pack the installed rock and install the packed file into another fresh tree
    local work, tree2 = os.tmpname(), os.tmpname()
    os.remove(work); os.remove(tree2)
    local ok3, out3 = sh(("mkdir -p '%s' && cd '%s' && luarocks --lua-version=5.4 --tree '%s' pack nnvis && " ..
      "luarocks --lua-version=5.4 --tree '%s' install nnvis-scm-1.*.rock"):format(work, work, tree, tree2))
    assert(ok3, out3)
    local ok4, out4 = sh("cd / && eval \"$(luarocks --lua-version=5.4 --tree '" .. tree2 .. "' path)\" && " ..
      "env -u LUA_PATH_5_4 lua5.4 -e 'local nv = require \"nnvis\"; print(nv.tensor{1,2}:exp():sum():item())'")
    -- the REPL is installed as the nnvis command, and runs with the installed modules only
    local ok5, out5 = sh("cd / && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 '" .. tree ..
      "/bin/nnvis' -e 'print(1+1)' -e 'print(package.searchpath(\"nnvis.readline\", package.cpath))'")
    -- the board's and the viewer's pages and the HTTP module are installed beside the modules
    local ok6, out6 = sh("cd / && eval \"$(luarocks --lua-version=5.4 --tree '" .. tree .. "' path)\" && " ..
      "env -u LUA_PATH_5_4 lua5.4 -e 'for _, m in ipairs{\"nnvis.ui.board.server\", \"nnvis.ui.view.server\"} do " ..
      "local p = package.searchpath(m, package.path):gsub(\"server%.lua$\", \"page/index.html\"); print(io.open(p) ~= nil) end " ..
      "print(package.searchpath(\"nnvis.http\", package.cpath) ~= nil)'")
    sh("rm -rf '" .. tree .. "' '" .. tree2 .. "' '" .. work .. "'")
    assert(ok6, out6)
    assert.equal("true\ntrue\ntrue\n", out6)
    assert(ok5, out5)
    assert.truthy(out5:find("^2\n"), out5)
    assert.truthy(out5:find(tree, 1, true), out5)
    assert(ok4, out4)
    assert.truthy(out4:find("10.10", 1, true), out4)
  end)

  it("has a LICENSE matching the rockspec's", function()
    local spec = io.open("rockspec/nnvis-scm-1.rockspec"):read("a")
    local lic = io.open("LICENSE"):read("a")
    assert.truthy(spec:find('license = "MIT"', 1, true))
    assert.truthy(lic:find("MIT License", 1, true))
    assert.truthy(lic:find("Copyright (c) 2026 the nnvis authors", 1, true))
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
    local ok, out = sh_here("env -u OPENBLAS_CORETYPE lua5.4 -e 'local c = require(\"nnvis\").config(); " ..
      "print(c.blas_core, c.blas_core_chosen_by_nnvis)'")
    assert(ok, out)
    if avx512 then
      assert.truthy(out:find("SkylakeX\ttrue", 1, true), out)
    else
      assert.truthy(out:find("false", 1, true), out)
    end
  end)

  it("respects an OPENBLAS_CORETYPE the user set", function()
    local ok, out = sh_here("env OPENBLAS_CORETYPE=Haswell lua5.4 -e 'local c = require(\"nnvis\").config(); " ..
      "print(c.blas_core, c.blas_core_chosen_by_nnvis)'")
    assert(ok, out)
    assert.truthy(out:find("Haswell\tfalse", 1, true), out)
  end)
end)
