-- The README's Lua code runs as written: each ```lua block is run by lua5.4 in a fresh folder
-- with the checkout's paths, after the files it names are prepared there (a model saved as
-- out/fashion_cnn.safetensors, m.pth, cat.jpg, resnet18.onnx).  A block preceded by
-- `<!-- not run: reason -->` is skipped; blocks that are busted specs run in busted_readme_spec.
local nv = require "nnvis"
local H = require "helpers"

local ROOT = io.popen("pwd"):read("l")
local PY = "/usr/bin/python3"
local have_torchvision = H.sh(PY .. " -c 'import torch, torchvision'")   -- without the sanitizer runtimes

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  return p:close(), out
end

local function blocks()
  local md = io.open("README.md"):read("a")
  local out = {}
  for before, code in md:gmatch("([^\n]*)\n```lua\n(.-)```") do
    out[#out + 1] = { code = code, skip = before:match("<!%-%- not run: (.-) %-%->") }
  end
  return out
end

describe("README code", function()
  local dir
  setup(function()
    dir = os.tmpname(); os.remove(dir)
    assert(sh("mkdir -p '" .. dir .. "/out' && cp spec/fixtures/photo_baseline.jpg '" .. dir .. "/cat.jpg'"))
    nv.manual_seed(1)
    assert(nv.models.fashion_cnn():save(dir .. "/out/fashion_cnn.safetensors"))
    assert(nv.models.resnet18():save(dir .. "/m.pth"))   -- model:load tells formats apart by their bytes
    if have_torchvision then
      assert(sh((H.CLEAN .. "cd '%s' && %s -c \"import torch, torchvision; m = torchvision.models.resnet18().eval(); " ..
        "torch.onnx.export(m, torch.rand(1, 3, 224, 224), 'resnet18.onnx', input_names=['x'], output_names=['logits'])\"")
        :format(dir, PY)))
    end
  end)
  teardown(function() sh("rm -rf '" .. dir .. "'") end)

  for i, b in ipairs(blocks()) do
    local first = b.code:match("[^\n]*\n[^\n]*") or b.code
    local needs_onnx = b.code:find("resnet18.onnx", 1, true)
    -- a block marked skip, or a busted spec (busted_readme_spec runs those), is not run here
    local runner = (b.skip or b.code:find("describe(", 1, true)) and pending
      or H.it_if(not needs_onnx or have_torchvision, "python3-torchvision to export resnet18.onnx")
    runner(("block %d runs as written: %s"):format(i, first:gsub("\n", " / ")), function()
      local path = dir .. "/block" .. i .. ".lua"
      local f = assert(io.open(path, "w"))
      f:write(b.code); f:close()
      local ok, out = sh(("cd '%s' && LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH='%s/build/?.so;;' lua5.4 '%s'")
        :format(dir, ROOT, ROOT, ROOT, path))
      assert(ok, out)
    end)
  end

  it("the Ten lines fail loudly without a saved model", function()
    local b = blocks()[1]
    local empty = os.tmpname(); os.remove(empty)
    assert(sh("mkdir -p '" .. empty .. "'"))
    local f = assert(io.open(empty .. "/ten.lua", "w"))
    f:write(b.code); f:close()
    local ok, out = sh(("cd '%s' && LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;;' LUA_CPATH='%s/build/?.so;;' lua5.4 ten.lua")
      :format(empty, ROOT, ROOT, ROOT))
    sh("rm -rf '" .. empty .. "'")
    assert.is_falsy(ok)
    assert.truthy(out:find("load: ", 1, true), out)
    assert.truthy(out:find("fashion_cnn.safetensors", 1, true), out)
  end)
end)
