-- nnvis.io.tensorboard — writes TensorBoard event files (scalars, histograms, images) with no
-- TensorFlow: TFRecord framing (length, masked CRC-32C of the length, payload, masked
-- CRC-32C of the payload) around Event protocol buffers encoded here by hand.
--   local tb = nv.tensorboard.writer("runs/exp1")
--   tb:scalar("loss", 0.42, step); tb:histogram("conv1.weight", w, step); tb:image("x", img, step)
--   tb:close()
local core = require "nnvis.core"
local check_opts = require("nnvis.tensor.util").check_opts

local M = {}

-- ---- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) -----------------------------
local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if c & 1 == 1 then c = (c >> 1) ~ 0x82F63B78 else c = c >> 1 end
  end
  crc_table[i] = c
end

--- crc32c(s): the CRC-32C of a string (TensorBoard's record checksum)
function M.crc32c(s)
  local c = 0xFFFFFFFF
  local byte, tbl = string.byte, crc_table
  for i = 1, #s do
    c = tbl[(c ~ byte(s, i)) & 0xFF] ~ (c >> 8)
  end
  return c ~ 0xFFFFFFFF
end

--- TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, modulo 2^32
function M.masked_crc(s)
  local c = M.crc32c(s)
  return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xa282ead8) & 0xFFFFFFFF
end

--- record(payload): one TFRecord (length, masked CRCs, payload) as bytes
function M.record(payload)
  local len = string.pack("<I8", #payload)
  return len .. string.pack("<I4", M.masked_crc(len)) .. payload .. string.pack("<I4", M.masked_crc(payload))
end

-- ---- protocol buffer encoding ----------------------------------------------------------------
--- varint(n): n as a protobuf base-128 varint
local function varint(n)
  local out = {}
  if n < 0 then n = n + 2 ^ 64 end   -- two's complement for negative int64 (not used for sizes)
  n = math.tointeger(n) or n
  repeat
    local b = n & 0x7F
    n = n >> 7
    out[#out + 1] = string.char(n ~= 0 and (b | 0x80) or b)
  until n == 0
  return table.concat(out)
end
M.varint = varint

local function key(field, wire) return varint((field << 3) | wire) end
local function f_varint(field, n) return key(field, 0) .. varint(n) end
local function f_double(field, x) return key(field, 1) .. string.pack("<d", x) end
local function f_float(field, x) return key(field, 5) .. string.pack("<f", x) end
local function f_bytes(field, s) return key(field, 2) .. varint(#s) .. s end
local function f_packed_doubles(field, list)
  local parts = {}
  for i, v in ipairs(list) do parts[i] = string.pack("<d", v) end
  return f_bytes(field, table.concat(parts))
end

-- Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5
-- wall time in seconds since 1970 (what TensorBoard plots), sub-second from the monotonic clock
local t_epoch, t_mono = os.time(), core.now()
local function wall_now() return t_epoch + (core.now() - t_mono) end

local function event(step, body, wall)
  return f_double(1, wall or wall_now()) .. f_varint(2, math.floor(step or 0)) .. body
end

-- Summary { repeated Value value = 1 };  Value: tag = 1, simple_value = 2, image = 4, histo = 5
local function summary(value) return f_bytes(5, f_bytes(1, value)) end

local Writer = {}
Writer.__index = Writer
local writers_opened = 0

--- opens dir/events.out.tfevents.<time>.<host>.nnvis (creating dir) and writes the version event
function M.writer(dir, opts)
  opts = check_opts("tensorboard.writer", opts, { "wall_time" })
  os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  local host = (io.popen("hostname 2>/dev/null"):read("l") or "localhost"):gsub("[^%w%-%.]", "")
  -- the count keeps two writers opened in one second in one folder apart
  writers_opened = writers_opened + 1
  local path = string.format("%s/events.out.tfevents.%d.%s.%d.nnvis", dir, os.time(), host, writers_opened)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local self = setmetatable({ file = f, path = path, wall = opts.wall_time }, Writer)
  self:_write(event(0, f_bytes(3, "brain.Event:2"), self.wall))
  return self
end

function Writer:_write(ev)
  if not self.file then error("tensorboard: the writer is closed", 3) end
  self.file:write(M.record(ev))
end

--- a scalar value at a step
function Writer:scalar(tag, value, step)
  if type(value) ~= "number" then value = value:item() end
  self:_write(event(step, summary(f_bytes(1, tag) .. f_float(2, value)), self.wall))
  return self
end

--- a histogram of a tensor's values (opts.bins, default 30) at a step
function Writer:histogram(tag, t, step, opts)
  opts = check_opts("histogram", opts, { "bins" })
  t = t:detach()
  local n = t:numel()
  local lo, hi = t:min():item(), t:max():item()
  local bins = opts.bins or 30
  local counts = t:histc(bins, lo, hi > lo and hi or lo + 1):values()
  local limits = {}
  local width = (hi > lo and hi - lo or 1) / bins
  for i = 1, bins do limits[i] = lo + i * width end
  limits[bins] = math.max(limits[bins], hi)
  local histo = f_double(1, lo) .. f_double(2, hi) .. f_double(3, n) .. f_double(4, t:sum():item()) ..
                f_double(5, t:square():sum():item()) .. f_packed_doubles(6, limits) .. f_packed_doubles(7, counts)
  self:_write(event(step, summary(f_bytes(1, tag) .. f_bytes(5, histo)), self.wall))
  return self
end

--- an image (C,H,W) or (H,W) in [0,1], stored as PNG, at a step
function Writer:image(tag, img, step)
  local png = core.png_encode(img:detach())
  local c = img:dim() == 3 and img:size(1) or 1
  local h, w = img:size(img:dim() - 1), img:size(img:dim())
  local image = f_varint(1, h) .. f_varint(2, w) .. f_varint(3, c) .. f_bytes(4, png)
  self:_write(event(step, summary(f_bytes(1, tag) .. f_bytes(4, image)), self.wall))
  return self
end

-- SummaryMetadata { plugin_data = 1 { plugin_name = 1, content = 2 } }
local function plugin(name, content) return f_bytes(9, f_bytes(1, f_bytes(1, name) .. (content and f_bytes(2, content) or ""))) end

--- text (Markdown) at a step, as TensorBoard's text plugin stores it: a string tensor
function Writer:text(tag, s, step)
  if type(s) ~= "string" then error("tensorboard.text: expected a string, got " .. type(s), 2) end
  -- TensorProto: dtype = 1 (DT_STRING = 7), tensor_shape = 2 (a scalar: empty), string_val = 8
  local tensor = f_varint(1, 7) .. f_bytes(2, "") .. f_bytes(8, s)
  self:_write(event(step, summary(f_bytes(1, tag) .. plugin("text") .. f_bytes(8, tensor)), self.wall))
  return self
end

-- google.protobuf.Value: number_value = 2 (double), string_value = 3, bool_value = 4
local function pb_value(v)
  if type(v) == "number" then return f_double(2, v) end
  if type(v) == "boolean" then return f_varint(4, v and 1 or 0) end
  return f_bytes(3, tostring(v))
end

--- the run's hyperparameters (a table name -> number, string or boolean), as the hparams
--- plugin stores them (session_start_info), so a board can tabulate runs by them
function Writer:hparams(hp)
  if type(hp) ~= "table" then error("tensorboard.hparams: expected a table of name -> value, got " .. type(hp), 2) end
  local names = {}
  for k, v in pairs(hp) do
    local t = type(v)
    if type(k) ~= "string" or (t ~= "number" and t ~= "string" and t ~= "boolean") then
      error("tensorboard.hparams: " .. tostring(k) .. " must be a string naming a number, string or boolean", 2)
    end
    names[#names + 1] = k
  end
  table.sort(names)
  local entries = {}
  for i, k in ipairs(names) do entries[i] = f_bytes(1, f_bytes(1, k) .. f_bytes(2, pb_value(hp[k]))) end
  -- HParamsPluginData: version = 1, session_start_info = 3 { hparams = 1 (map), start_time_secs = 5 }
  local ssi = table.concat(entries) .. f_double(5, self.wall or wall_now())
  local content = f_varint(1, 0) .. f_bytes(3, ssi)
  self:_write(event(0, summary(f_bytes(1, "_hparams_/session_start_info") .. plugin("hparams", content)), self.wall))
  return self
end

function Writer:flush() if self.file then self.file:flush() end return self end

function Writer:close()
  if self.file then self.file:close(); self.file = nil end
end
Writer.__close = Writer.close
Writer.__gc = Writer.close

return M
