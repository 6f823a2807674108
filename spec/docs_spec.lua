-- docs/API.md is generated from the doc comments and up to date; public functions have docs.
local nv = require "nnvis"

local function has_doc(f)
  local info = debug.getinfo(f, "S")
  if info.what ~= "Lua" or not info.source:find("^@") then return true end   -- C: see the README
  local path, line, lines = info.source:sub(2), info.linedefined, {}
  for l in io.lines(path) do lines[#lines + 1] = l; if #lines >= line then break end end
  local prev = lines[line - 1] or ""
  return prev:match("^%s*%-%-%-") ~= nil or (lines[line] or ""):match("^%s*%-%-%-") ~= nil
end

-- every Lua function reachable from require "nnvis": nv.*, its modules' functions, layers'
-- and Module's methods
local function public()
  local out, seen = {}, {}
  local function add(name, f)
    if type(f) == "function" and not seen[f] then seen[f] = true; out[#out + 1] = { name, f } end
  end
  for _, k in ipairs { "nn", "optim", "models", "data", "train", "cam", "plot", "tensorboard",
                       "features", "onnx", "image" } do
    for name, f in pairs(nv[k]) do
      if type(f) == "function" then add("nv." .. k .. "." .. name, f) end
    end
  end
  for name, f in pairs(nv) do add("nv." .. name, f) end
  for name, f in pairs(nv.nn.Module) do
    if type(name) == "string" and not name:find("^__") then add("nv.nn.Module:" .. name, f) end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

describe("docs/API.md", function()
  it("is what tools/gendocs.lua writes from the doc comments (run make docs)", function()
    local gen = dofile("tools/gendocs.lua")
    local want = gen.generate(".")
    local got = io.open("docs/API.md"):read("a")
    assert.equal(want, got)
  end)

  it("documents nv.capture, nv.gradcheck, Module:load and the layers", function()
    local md = io.open("docs/API.md"):read("a")
    for _, s in ipairs { "nv.capture(", "nv.gradcheck(", "Module:load(", "Conv2d", "M.fashion_mnist(" } do
      assert.truthy(md:find(s, 1, true), s)
    end
  end)

  it("every public Lua function has a doc comment (no new undocumented ones)", function()
    local missing = {}
    for _, e in ipairs(public()) do
      if not has_doc(e[2]) then missing[#missing + 1] = e[1] end
    end
    if #missing > 0 then
      error(("%d public functions lack a --- doc comment: %s"):format(#missing, table.concat(missing, ", ")))
    end
  end)

  it("the README links only to files in the repository", function()
    local md = io.open("README.md"):read("a")
    for target in md:gmatch("%]%(([^)#]+)[^)]*%)") do
      if not target:find("^https?:") then
        assert.truthy(io.open(target), "README links to a missing file: " .. target)
      end
    end
    assert.is_nil(md:find("../shared", 1, true))
  end)
end)
