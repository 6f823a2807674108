-- The Lua modules are packaged by layer (lua/nnvis/LAYERS.md): a module may require modules of
-- its own layer and of the layers below it, never above, and the requires form no cycle.  This
-- spec reads every `require "nnvis..."` in lua/nnvis/ — those inside functions too, which is
-- where hidden cycles used to live — and fails on an upward one or a cycle.

local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$") or ".") .. "/lua/nnvis/"

-- the declared order, bottom first: the C core, then the folders, then the facade
-- (lua/nnvis/init.lua, `require "nnvis"`), then the programs built on the facade
local ORDER = { "core", "tensor", "io", "nn", "draw", "inspect", "explain", "train", "ui", "facade", "app" }
local RANK = {}
for i, l in ipairs(ORDER) do RANK[l] = i end
local C_MODULES = { ["nnvis.core"] = true, ["nnvis.readline"] = true, ["nnvis.ompenv"] = true, ["nnvis.http"] = true }

local function lua_files()
  local p = assert(io.popen("cd '" .. ROOT .. "' && find . -name '*.lua' | sort"))
  local out = {}
  for line in p:lines() do out[#out + 1] = line:sub(3) end
  p:close()
  return out
end

local function module_of(path)        -- "explain/cam.lua" -> "nnvis.explain.cam"
  local m = path:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
  return m == "init" and "nnvis" or "nnvis." .. m
end

local function layer_of(mod)
  if C_MODULES[mod] then return "core" end
  if mod == "nnvis" then return "facade" end
  return mod:match("^nnvis%.([%w_]+)")
end

local function requires_of(path)
  local f = assert(io.open(ROOT .. path))
  local src = f:read("a")
  f:close()
  -- comments hold examples of use (`local doc = require "nnvis.app.doc"`), not requires
  src = src:gsub("%-%-%[(=*)%[.-%]%1%]", ""):gsub("%-%-[^\n]*", "")
  local out = {}
  for _, name in src:gmatch("require%s*%(?%s*([\"'])(nnvis[%w_.]*)%1") do
    if not name:match("%.$") then out[#out + 1] = name end   -- "nnvis." .. computed: not a fixed edge
  end
  return out
end

local function graph()
  local g, files = {}, {}
  for _, path in ipairs(lua_files()) do
    local m = module_of(path)
    files[m] = path
    g[m] = requires_of(path)
  end
  return g, files
end

describe("the Lua packages by layer", function()
  it("declares every folder of lua/nnvis as a layer", function()
    for _, path in ipairs(lua_files()) do
      local l = layer_of(module_of(path))
      assert(RANK[l], path .. " is in no declared layer (" .. tostring(l) .. ")")
    end
  end)

  it("has no require that points up a layer", function()
    local g, files = graph()
    local bad = {}
    for m, reqs in pairs(g) do
      for _, r in ipairs(reqs) do
        if r ~= m and RANK[layer_of(r)] and RANK[layer_of(r)] > RANK[layer_of(m)] then
          bad[#bad + 1] = ("%s (%s) requires %s (%s)"):format(files[m], layer_of(m), r, layer_of(r))
        end
      end
    end
    table.sort(bad)
    assert(#bad == 0, "upward requires:\n" .. table.concat(bad, "\n"))
  end)

  it("requires only modules that exist", function()
    local g, files = graph()
    for m, reqs in pairs(g) do
      for _, r in ipairs(reqs) do
        assert(g[r] or C_MODULES[r], files[m] .. " requires " .. r .. ", which is no module")
      end
    end
  end)

  it("has no cycle among the modules, counting requires inside functions", function()
    local g, files = graph()
    local state, stack = {}, {}
    local function visit(m)
      state[m] = "open"
      stack[#stack + 1] = m
      for _, r in ipairs(g[m] or {}) do
        if r ~= m and g[r] then
          if state[r] == "open" then
            local cyc, on = {}, false
            for _, s in ipairs(stack) do if s == r then on = true end; if on then cyc[#cyc + 1] = s end end
            cyc[#cyc + 1] = r
            error("a cycle of requires: " .. table.concat(cyc, " -> "), 0)
          elseif not state[r] then visit(r) end
        end
      end
      stack[#stack] = nil
      state[m] = "done"
    end
    local names = {}
    for m in pairs(g) do names[#names + 1] = m end
    table.sort(names)
    for _, m in ipairs(names) do if not state[m] then visit(m) end end
  end)

  it("keeps every file under 1,000 lines except tables of data", function()
    local TABLES = { ["io/imagenet_classes.lua"] = true }
    for _, path in ipairs(lua_files()) do
      if not TABLES[path] then
        local n = 0
        for _ in io.lines(ROOT .. path) do n = n + 1 end
        assert(n <= 1000, path .. " has " .. n .. " lines")
      end
    end
  end)
end)
