-- The C core is layered (csrc/LAYERS): a file includes headers of its own layer or of layers
-- below it, and only the binding (csrc/lua/) knows Lua.
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function root()
  local src = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = src:match("^(.*)/spec/[^/]*$") or "."
  return dir
end

local ROOT = root()

local function layers()
  local order, rank = {}, {}
  local text = read(ROOT .. "/csrc/LAYERS")
  for name in text:gmatch("\n  (%l+)%s") do
    if not rank[name] then
      order[#order + 1] = name
      rank[name] = #order
    end
  end
  return order, rank
end

local function sources()
  local list = {}
  local p = assert(io.popen("cd '" .. ROOT .. "' && find csrc -type f \\( -name '*.c' -o -name '*.h' -o -name '*.cc' -o -name '*.def' \\) | sort"))
  for line in p:lines() do list[#list + 1] = line end
  p:close()
  return list
end

describe("the C core's layers", function()
  local order, rank = layers()

  it("are declared in csrc/LAYERS, lowest first", function()
    assert.same({ "core", "autograd", "kernels", "ops", "io", "draw", "lua" }, order)
  end)

  it("keep every source file in a layer folder", function()
    for _, f in ipairs(sources()) do
      local layer = f:match("^csrc/(%l+)/")
      assert(layer and rank[layer], f .. " is not in a layer folder of csrc/")
    end
  end)

  it("never include a header of a higher layer", function()
    local bad = {}
    for _, f in ipairs(sources()) do
      local layer = f:match("^csrc/(%l+)/")
      for inc in read(ROOT .. "/" .. f):gmatch('#%s*include%s*"([^"]+)"') do
        local to = inc:match("^(%l+)/")
        if to and rank[to] then
          if rank[to] > rank[layer] then bad[#bad + 1] = f .. " includes " .. inc end
        elseif not inc:match("%.pb%-c%.h$") and not (layer == "lua" and (inc == "lua.h" or inc == "lauxlib.h" or inc == "lualib.h")) then
          bad[#bad + 1] = f .. " includes " .. inc .. ", which names no layer (write \"layer/file.h\")"
        end
      end
    end
    assert.same({}, bad)
  end)

  it("include lua.h and lauxlib.h only in the binding", function()
    local bad = {}
    for _, f in ipairs(sources()) do
      if not f:match("^csrc/lua/") then
        for inc in read(ROOT .. "/" .. f):gmatch("#%s*include%s*[<\"]([^>\"]+)[>\"]") do
          if inc:match("^lua%.h$") or inc:match("^lauxlib%.h$") or inc:match("^lualib%.h$") then
            bad[#bad + 1] = f .. " includes " .. inc
          end
        end
      end
    end
    assert.same({}, bad)
  end)

  it("keep every C file under about 1,000 lines", function()
    local big = {}
    for _, f in ipairs(sources()) do
      local n = select(2, read(ROOT .. "/" .. f):gsub("\n", "\n"))
      if n > 1000 then big[#big + 1] = f .. " (" .. n .. " lines)" end
    end
    assert.same({}, big)
  end)
end)
