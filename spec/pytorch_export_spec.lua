-- A state dict laid out as PyTorch's safetensors export writes it (F32 tensors, I64 0-dim
-- num_batches_tracked, keys sorted, 8-byte aligned header) loads unchanged.
local nv = require "nnvis"

-- writes {name = {dtype = "F32" | "I64", shape = {...}, values = {...}}} like safetensors.torch
local function write_safetensors(path, entries)
  local names = {}
  for k in pairs(entries) do names[#names + 1] = k end
  table.sort(names)
  local header, blobs, offset = {}, {}, 0
  for _, k in ipairs(names) do
    local e = entries[k]
    local parts = {}
    for i, v in ipairs(e.values) do
      parts[i] = e.dtype == "I64" and string.pack("<i8", math.tointeger(v)) or string.pack("<f", v)
    end
    local blob = table.concat(parts)
    header[#header + 1] = string.format('"%s":{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}', k, e.dtype,
      table.concat(e.shape, ","), offset, offset + #blob)
    blobs[#blobs + 1] = blob
    offset = offset + #blob
  end
  local h = "{" .. table.concat(header, ",") .. "}"
  h = h .. string.rep(" ", (8 - #h % 8) % 8)
  local f = assert(io.open(path, "wb"))
  f:write(string.pack("<I8", #h), h, table.concat(blobs))
  f:close()
end

describe("PyTorch exports", function()
  it("a Fashion-MNIST CNN state dict with int64 num_batches_tracked loads and gives the same outputs", function()
    nv.manual_seed(5)
    local ref = nv.models.fashion_cnn()
    ref:eval()
    local entries = {}
    for k, t in pairs(ref:state_dict()) do
      if type(k) == "string" and getmetatable(t) == getmetatable(nv.zeros(1)) then
        if k:match("num_batches_tracked$") then
          entries[k] = { dtype = "I64", shape = {}, values = { 3 } }
        else
          entries[k] = { dtype = "F32", shape = t:shape(), values = t:contiguous():values() }
        end
      end
    end
    local path = os.tmpname()
    write_safetensors(path, entries)
    local m = nv.models.fashion_cnn { init = false }
    assert(m:load(path))
    os.remove(path)
    m:eval()
    local x = nv.randn(2, 1, 28, 28)
    local a, b = nv.no_grad(function() return ref(x), m(x) end)
    assert.is_true((a - b):abs():max():item() < 1e-5)
    assert.equal(3, m:get("features.1.num_batches_tracked"):item())
  end)
end)
