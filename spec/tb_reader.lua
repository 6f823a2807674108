-- Reading TensorBoard event files in specs: a minimal protobuf decoder and the record framing
-- (each record's length and payload checked against their masked CRC-32C).
local TB = require "nnvis.io.tensorboard"

local M = {}

-- a minimal protobuf decoder: field number -> list of values (varint numbers, raw strings
-- for length-delimited fields, numbers for fixed64 doubles and fixed32 floats)
function M.decode(s)
  local out, i = {}, 1
  local function varint()
    local n, shift = 0, 0
    repeat
      local b = s:byte(i)
      i = i + 1
      n = n | ((b & 0x7F) << shift)
      shift = shift + 7
    until b < 0x80
    return n
  end
  while i <= #s do
    local k = varint()
    local field, wire = k >> 3, k & 7
    local v
    if wire == 0 then v = varint()
    elseif wire == 1 then v = string.unpack("<d", s, i); i = i + 8
    elseif wire == 5 then v = string.unpack("<f", s, i); i = i + 4
    elseif wire == 2 then local n = varint(); v = s:sub(i, i + n - 1); i = i + n
    else error("bad wire type " .. wire) end
    out[field] = out[field] or {}
    table.insert(out[field], v)
  end
  return out
end

function M.read_records(path)
  local data = assert(io.open(path, "rb")):read("a")
  local recs, i = {}, 1
  while i <= #data do
    local len = string.unpack("<I8", data, i)
    local lencrc = string.unpack("<I4", data, i + 8)
    assert(TB.masked_crc(data:sub(i, i + 7)) == lencrc, "length CRC")
    local payload = data:sub(i + 12, i + 12 + len - 1)
    local pcrc = string.unpack("<I4", data, i + 12 + len)
    assert(TB.masked_crc(payload) == pcrc, "payload CRC")
    recs[#recs + 1] = payload
    i = i + 12 + len + 4
  end
  return recs
end

-- every (tag, step) of a log: tags[tag] = {steps...}
function M.tags(path)
  local tags = {}
  for _, rec in ipairs(M.read_records(path)) do
    local ev = M.decode(rec)
    local step = ev[2] and ev[2][1] or 0
    for _, summ in ipairs(ev[5] or {}) do
      for _, val in ipairs(M.decode(summ)[1] or {}) do
        local tag = M.decode(val)[1][1]
        tags[tag] = tags[tag] or {}
        table.insert(tags[tag], step)
      end
    end
  end
  return tags
end

-- calls fn(tag, step, value) for every summary value of the event files of one run folder
-- (value: the decoded Summary.Value, fields by number)
local function each_value(dir, fn)
  local p = io.popen("ls '" .. dir .. "'/*tfevents* 2>/dev/null")
  for path in p:lines() do
    for _, rec in ipairs(M.read_records(path)) do
      local ev = M.decode(rec)
      local step = ev[2] and ev[2][1] or 0
      for _, summ in ipairs(ev[5] or {}) do
        for _, val in ipairs(M.decode(summ)[1] or {}) do
          local v = M.decode(val)
          fn(v[1][1], step, v)
        end
      end
    end
  end
  p:close()
end

-- every (tag, step) of the event files of one run folder: tags[tag] = {steps...}
function M.run_tags(dir)
  local tags = {}
  each_value(dir, function(tag, step)
    tags[tag] = tags[tag] or {}
    table.insert(tags[tag], step)
  end)
  return tags
end

-- the string values of a text summary (TensorBoard's text plugin) of one run folder: tag -> text
function M.run_texts(dir)
  local out = {}
  each_value(dir, function(tag, _, v)
    if v[8] then out[tag] = M.decode(v[8][1])[8][1] end
  end)
  return out
end

return M
