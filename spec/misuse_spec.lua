-- Every function and method of the core, called with wrong arguments, raises a Lua error
-- (or returns nil, message) and never crashes the process.
local nv = require "nnvis"
local core = nv.core

local bad_values = { n = 14 }
local function bad(i)
  local t = {
    nil, "x", {}, { 1, "a" }, -1, 0, 1e300, 0 / 0, -2 ^ 53, true, function() end,
    nv.zeros(0), nv.tensor(3), nv.zeros(2, 3):t(),
  }
  return t[i]
end

describe("misuse", function()
  it("never crashes any core function or tensor method", function()
    local names = {}
    -- (the savers are left out: a number coerces to a file name; files_spec covers them)
    -- (and what reaches the network or makes folders: weights_spec covers them on loopback)
    local skip = { _memcpy_seconds = true, png_save = true, safetensors_save = true, http_get = true, mkdirs = true }
    for k, v in pairs(core) do if type(v) == "function" and not skip[k] then names[#names + 1] = k end end
    table.sort(names)
    local calls = 0
    for _, name in ipairs(names) do
      local f = core[name]
      for i = 1, bad_values.n do
        for j = 1, bad_values.n, 3 do
          if name ~= "set_grad_enabled" and name ~= "set_guided_relu" and name ~= "config" and name ~= "cache_limit"
            and name ~= "manual_seed" then
            local ok, err = pcall(f, bad(i), bad(j), bad(j))
            assert(ok or type(err) ~= "string" or not err:find("bad argument #%-"),
              name .. " raised a message naming a stack slot: " .. tostring(err))
            calls = calls + 1
          end
        end
      end
    end
    local methods = {}
    for k, v in pairs(core.Tensor) do if type(v) == "function" then methods[#methods + 1] = k end end
    table.sort(methods)
    local subjects = { nv.zeros(2, 3), nv.zeros(0, 4), nv.tensor(1.5), nv.ones(2, 3):t(), nv.ones(1, 2, 3, 4) }
    for _, m in ipairs(methods) do
      for _, s in ipairs(subjects) do
        for i = 1, bad_values.n do
          pcall(core.Tensor[m], s, bad(i), bad((i % 5) + 1))
          calls = calls + 1
        end
      end
    end
    core.set_grad_enabled(true)
    assert.is_true(calls > 1000)
    assert.equal(6, (nv.ones(2, 3)):sum():item())   -- still alive and well
  end)

  it("raises for integer overflow in sizes rather than allocating garbage", function()
    assert.has_error(function() nv.zeros(2 ^ 31, 2 ^ 31, 2 ^ 31) end)
    assert.has_error(function() nv.zeros(1, 2, 3, 4, 5, 6, 7, 8, 9) end)
    assert.has_error(function() nv.arange(0, 1e12) end)
  end)
end)
