-- The README's "Testing your model with busted" works as written: nnvis installed in a fresh
-- tree, the README's spec file run by the README's commands.
local sh = require("helpers").sh

local function section(md, title)
  local body = md:match("## " .. title .. "\n(.-)\n## ")
  local lua_block = body:match("```lua\n(.-)```")
  local sh_block = body:match("```sh\n(.-)```")
  return lua_block, sh_block
end

describe("README: Testing your model with busted", function()
  it("runs the README's spec with the README's commands after a luarocks install", function()
    local md = io.open("README.md"):read("a")
    local code, cmds = section(md, "Testing your model with busted")
    assert.truthy(code and cmds)
    local home = os.tmpname(); os.remove(home)
    assert(sh("mkdir -p '" .. home .. "/proj/spec'"))
    local f = assert(io.open(home .. "/proj/spec/double_spec.lua", "w"))
    f:write(code); f:close()
    local ok, out = sh(("HOME='%s' luarocks --lua-version=5.4 --tree '%s/.nnvis' make rockspec/nnvis-scm-1.rockspec")
      :format(home, home))
    assert(ok, out)
    -- a clean environment: no paths from this test run
    local script = home .. "/readme.sh"
    f = assert(io.open(script, "w"))
    f:write(cmds); f:close()
    local ok2, out2 = sh(("cd '%s/proj' && env -i HOME='%s' PATH=/usr/local/bin:/usr/bin:/bin sh -e '%s'")
      :format(home, home, script))
    sh("rm -rf '" .. home .. "'")
    assert(ok2, out2)
    assert.truthy(out2:find("1 success / 0 failures", 1, true), out2)
  end)
end)

describe("nnvis.tensor.assert", function()
  require "nnvis.tensor.assert"
  local nv = require "nnvis"
  it("tensor_near names the worst element, its index and both values", function()
    local ok, err = pcall(assert.tensor_near, nv.tensor { { 1, 2 }, { 3, 4 } }, { { 1, 2 }, { 3, 4.5 } })
    assert.is_false(ok)
    assert.matches("worst element 4 at index (2,2): got 4, want 4.5", tostring(err), 1, true)
    assert.tensor_near(nv.tensor { 1, 2 }, { 1, 2.00001 })
    assert.tensor_near(nv.tensor { 1, 2 }, { 1.01, 2 }, { atol = 0.02 })
  end)
  it("shape compares the sizes", function()
    assert.shape(nv.zeros(2, 3), { 2, 3 })
    assert.has_error(function() assert.shape(nv.zeros(2, 3), { 3, 2 }) end)
  end)
  it("assert.gradcheck reports a wrong gradient as a failure of the spec, not an error", function()
    local dir = os.tmpname(); os.remove(dir)
    assert(sh("mkdir -p '" .. dir .. "'"))
    local f = assert(io.open(dir .. "/g_spec.lua", "w"))
    f:write([[
local nv = require "nnvis"
require "nnvis.tensor.assert"
describe("a layer", function()
  it("has a wrong gradient", function()
    assert.gradcheck(function(a) return nv.no_grad(function() return a * 2 end) + a * 0 end, { nv.tensor { 1, 2 } })
  end)
  it("has a right one", function() assert.gradcheck(function(a) return a * a end, { nv.tensor { 1, 2 } }) end)
end)
]])
    f:close()
    -- this run's nnvis (the _5_4 variables: busted starts under Lua 5.1 first)
    local p = io.popen(("LUA_PATH_5_4='%s' LUA_CPATH_5_4='%s' busted --lua=lua5.4 '%s/g_spec.lua' 2>&1")
      :format(package.path, package.cpath, dir))
    local out = p:read("a")
    local ok = p:close()
    sh("rm -rf '" .. dir .. "'")
    assert.falsy(ok)
    assert.truthy(out:find("1 success / 1 failure / 0 errors", 1, true), out)
    assert.truthy(out:find("gradcheck: input 1 element", 1, true), out)
  end)

  it("gradcheck raises naming the worst element of a wrong gradient", function()
    local ok, err = pcall(nv.gradcheck, function(a) return nv.no_grad(function() return a * 2 end) + a * 0 end,
      { nv.tensor { 1, 2 } })
    assert.is_false(ok)
    assert.matches("gradcheck: input 1 element %d %(index %(%d%)%): analytic %-?0, numeric %-?[%d.]+ %(|diff|", err)
  end)
end)
