-- nn.hooks(): the one way nnvis's tools hook a model, removed together at the end of a scope
local nv = require "nnvis"

describe("nv.nn.hooks", function()
  it("removes every hook of the group when its scope is left, also by an error", function()
    local m = nv.nn.Sequential { nv.nn.Linear(3, 2), nv.nn.ReLU() }
    local calls = 0
    local ok = pcall(function()
      local hooks <close> = nv.nn.hooks()
      hooks:add(m:get("0"), function() calls = calls + 1 end)
      hooks:add(m:get("1"), function() calls = calls + 1 end)
      m(nv.randn(1, 3))
      error("in the middle")
    end)
    assert.is_false(ok)
    assert.equal(2, calls)
    m(nv.randn(1, 3))
    assert.equal(2, calls)          -- the hooks are gone
    assert.equal(0, #rawget(m:get("0"), "_hooks"))
  end)

  it("removes its hooks once, however often remove is called", function()
    local l = nv.nn.Linear(2, 2)
    local hooks = nv.nn.hooks()
    local own = l:register_forward_hook(function() end)   -- not the group's: it stays
    hooks:add(l, function(_, _, out) return out * 0 end)
    assert.equal(0, l(nv.ones(1, 2)):abs():sum():item())
    hooks:remove()
    hooks:remove()
    assert.equal(1, #rawget(l, "_hooks"))
    own:remove()
  end)
end)
