-- The board's event file reader (lua/nnvis/ui/board/events.lua over nnvis.http.scan): files
-- from nnvis's writer, and files built here record by record as other writers make them
-- (PyTorch's tensor scalars, JPEG images, hparams, text, TF2 histograms, a GraphDef), and broken
-- ones (a bad CRC, a cut tail, a file that grows).
local nv = require "nnvis"
local TB = require "nnvis.io.tensorboard"
local E = require "nnvis.ui.board.events"
local http = require "nnvis.http"
local H = require "helpers"

-- ---- protobuf by hand ----------------------------------------------------------------------
local function key(f, w) return TB.varint((f << 3) | w) end
local function vint(f, n) return key(f, 0) .. TB.varint(n) end
local function bytes(f, s) return key(f, 2) .. TB.varint(#s) .. s end
local function dbl(f, x) return key(f, 1) .. string.pack("<d", x) end
local function flt(f, x) return key(f, 5) .. string.pack("<f", x) end
local function event(step, body, wall) return dbl(1, wall or 1000.5 + step) .. vint(2, step) .. (body or "") end
local function summary(...)
  local vals = {}
  for i, v in ipairs({ ... }) do vals[i] = bytes(1, v) end
  return bytes(5, table.concat(vals))
end
local function meta(plugin, content)
  return bytes(9, bytes(1, bytes(1, plugin) .. (content and bytes(2, content) or "")))
end
-- TensorProto: dtype 1, shape 2, tensor_content 4, float_val 5, double_val 6, string_val 8
local function scalar_shape() return bytes(2, "") end

local tmp
local function dir(name)
  local d = tmp .. "/" .. name
  assert(nv.core.mkdirs(d))
  return d
end
local function write(path, recs, mode)
  local f = assert(io.open(path, mode or "wb"))
  for _, r in ipairs(recs) do f:write(r) end
  f:close()
end
local function records(events)
  local out = {}
  for i, e in ipairs(events) do out[i] = TB.record(e) end
  return out
end

local function reader(d)
  local r = E.new({ d })
  r:poll()
  return r
end

setup(function()
  tmp = os.tmpname()
  os.remove(tmp)
  assert(nv.core.mkdirs(tmp))
end)
teardown(function() os.execute("rm -rf '" .. tmp .. "'") end)

describe("nnvis.http.scan", function()
  it("computes CRC-32C as the Lua writer does", function()
    assert.equal(0xE3069283, http.crc32c("123456789"))
    assert.equal(TB.crc32c(string.rep("board", 100)), http.crc32c(string.rep("board", 100)))
  end)

  it("returns the scalars as columns per tag and the other events as bytes", function()
    local d = dir("scan")
    write(d .. "/events.out.tfevents.1", records({
      event(0, bytes(3, "brain.Event:2")),
      event(1, summary(bytes(1, "loss") .. flt(2, 0.5), bytes(1, "acc") .. flt(2, 0.25))),
      event(2, summary(bytes(1, "loss") .. flt(2, 0.125))),
      event(3, summary(bytes(1, "t") .. bytes(8, vint(1, 7) .. bytes(8, "hello")) .. meta("text"))),
    }))
    local res = assert(http.scan(d .. "/events.out.tfevents.1", 0))
    assert.same({ 1, 2 }, res.scalars.loss.step)
    assert.same({ 0.5, 0.125 }, res.scalars.loss.value)
    assert.same({ 1001.5, 1002.5 }, res.scalars.loss.wall)
    assert.same({ 0.25 }, res.scalars.acc.value)
    assert.equal(1, #res.events)
    assert.equal(3, res.events[1].step)
    assert.equal(4, res.records)
    assert.equal(H.read_all(d .. "/events.out.tfevents.1"):len(), res.offset)
    assert.same({}, res.warnings)
  end)

  it("returns nil and a message for a file that cannot be opened", function()
    local res, err = http.scan(tmp .. "/nope", 0)
    assert.is_nil(res)
    assert.matches("nope: No such file", err)
  end)

  it("skips a record longer than its 64 MB cap without allocating it", function()
    local d = dir("huge")
    local len = string.pack("<I8", 1 << 40)
    local bad = len .. string.pack("<I4", TB.masked_crc(len)) .. "xxxx"
    write(d .. "/events.out.tfevents.1", { bad })
    local res = assert(http.scan(d .. "/events.out.tfevents.1", 0))
    assert.equal(1, #res.warnings)
    assert.matches("over the 64 MB limit", res.warnings[1])
  end)
end)

describe("nnvis.ui.board.events", function()
  it("reads what nnvis's writer wrote: scalars, a histogram, a PNG image", function()
    local d = dir("nnvis/run1")
    local w = TB.writer(d)
    for i = 1, 100 do w:scalar("loss", 1 / i, i) end
    w:histogram("weights", nv.arange(0, 10):float(), 5, { bins = 5 })
    w:image("x", nv.rand(3, 4, 6), 7)
    w:close()
    local r = reader(tmp .. "/nnvis")
    assert.same({ "run1" }, r.order)
    local run = r.runs.run1
    local col = run.scalars.loss
    assert.equal(100, col.n)
    assert.equal(100, col.step[100])
    assert.near(0.01, col.value[100], 1e-6)
    local h = run.histograms.weights[1]
    assert.equal(5, h.step)
    assert.equal(0, h.min)
    assert.equal(9, h.max)
    assert.equal(10, h.num)
    assert.equal(5, #h.limits)
    local sum = 0
    for _, c in ipairs(h.counts) do sum = sum + c end
    assert.equal(10, sum)
    local im = run.images.x[1]
    assert.equal("image/png", im.mime)
    assert.equal(6, im.width)
    assert.equal(4, im.height)
    assert.equal(7, im.step)
  end)

  it("reads scalars written as tensors as PyTorch writes them: float_val, tensor_content, double", function()
    local d = dir("torch")
    write(d .. "/events.out.tfevents.1.host", records({
      event(0, bytes(3, "brain.Event:2")),
      -- new_style scalars: a float tensor of shape () with plugin "scalars" on the first event only
      event(1, summary(bytes(1, "a") .. bytes(8, vint(1, 1) .. scalar_shape() .. bytes(5, string.pack("<f", 1.5))) .. meta("scalars"))),
      event(2, summary(bytes(1, "a") .. bytes(8, vint(1, 1) .. scalar_shape() .. bytes(5, string.pack("<f", 2.5))))),
      event(1, summary(bytes(1, "b") .. bytes(8, vint(1, 1) .. scalar_shape() .. bytes(4, string.pack("<f", -3))))),
      event(1, summary(bytes(1, "c") .. bytes(8, vint(1, 2) .. scalar_shape() .. bytes(6, string.pack("<d", 0.1))) .. meta("scalars"))),
      event(2, summary(bytes(1, "c") .. bytes(8, vint(1, 2) .. bytes(4, string.pack("<d", 0.2))))),
    }))
    local run = reader(d).runs["."]
    assert.same({ 1.5, 2.5 }, run.scalars.a.value)
    assert.same({ 1, 2 }, run.scalars.a.step)
    assert.same({ -3 }, run.scalars.b.value)
    assert.same({ 0.1, 0.2 }, run.scalars.c.value)     -- doubles stay doubles
  end)

  it("reads JPEG and PNG images by their bytes, and refuses anything else", function()
    local d = dir("images")
    local jpeg = H.read_all("spec/fixtures/tiny_photo.jpg")
    local img = function(s) return bytes(4, vint(1, 2) .. vint(2, 3) .. vint(3, 3) .. bytes(4, s)) end
    write(d .. "/events.out.tfevents.1", records({
      event(1, summary(bytes(1, "photo") .. img(jpeg))),
      event(2, summary(bytes(1, "photo") .. img("GIF89a not allowed"))),
      -- TF2's image summaries: a string tensor [width, height, encoded...] with plugin "images"
      event(3, summary(bytes(1, "tf2") .. bytes(8, vint(1, 7) .. bytes(8, "3") .. bytes(8, "2") .. bytes(8, jpeg)) .. meta("images"))),
    }))
    local r = reader(d)
    local run = r.runs["."]
    assert.equal(1, #run.images.photo)
    assert.equal("image/jpeg", run.images.photo[1].mime)
    assert.equal(jpeg, run.images.photo[1].data)
    assert.equal(3, run.images.photo[1].width)
    assert.equal("image/jpeg", run.images.tf2[1].mime)
    assert.equal(3, run.images.tf2[1].width)
    assert.matches("neither PNG nor JPEG", table.concat(r.warnings, "\n"))
  end)

  it("reads text, hparams, a TF2 histogram, a GraphDef and nnvis's graph SVG", function()
    local d = dir("misc")
    local ssi = bytes(1, bytes(1, "lr") .. bytes(2, dbl(2, 0.01))) .. bytes(1, bytes(1, "opt") .. bytes(2, bytes(3, "sgd")))
            .. bytes(1, bytes(1, "bn") .. bytes(2, vint(4, 1)))
    local exp = bytes(4, bytes(1, "lr")) .. bytes(4, bytes(1, "opt")) .. bytes(5, bytes(1, bytes(2, "loss")))
    local node = function(name, op, inputs, attrs)
      local s = bytes(1, name) .. bytes(2, op)
      for _, i in ipairs(inputs) do s = s .. bytes(3, i) end
      return bytes(1, s .. (attrs or ""))
    end
    local shape = bytes(5, bytes(1, "shape") .. bytes(2, bytes(7, bytes(2, vint(1, 1)) .. bytes(2, vint(1, 3)))))
    local hist = ""
    for _, x in ipairs({ 0, 1, 2, 1, 2, 5 }) do hist = hist .. string.pack("<d", x) end
    write(d .. "/events.out.tfevents.1", records({
      event(1, summary(bytes(1, "notes") .. bytes(8, vint(1, 7) .. bytes(8, "**bold** <script>")) .. meta("text"))),
      event(0, summary(bytes(1, "_hparams_/experiment") .. meta("hparams", bytes(2, exp)))),
      event(0, summary(bytes(1, "_hparams_/session_start_info") .. meta("hparams", bytes(3, ssi)))),
      event(4, summary(bytes(1, "h") .. bytes(8, vint(1, 2) .. bytes(4, hist)) .. meta("histograms"))),
      event(0, bytes(4, node("x", "Placeholder", {}, shape) .. node("y", "Relu", { "x" }))),
      event(0, summary(bytes(1, "nnvis/graph_svg") .. bytes(8, vint(1, 7) .. bytes(8, "<svg></svg>")) .. meta("text"))),
      event(1, summary(bytes(1, "loss") .. flt(2, 0.5))),
    }))
    local run = reader(d).runs["."]
    assert.equal("**bold** <script>", run.text.notes[1].text)
    assert.same({ lr = 0.01, opt = "sgd", bn = true }, run.hparams)
    assert.same({ "lr", "opt" }, run.experiment.hparams)
    assert.same({ { group = "", tag = "loss" } }, run.experiment.metrics)
    local h = run.histograms.h[1]
    assert.same({ 1, 2 }, h.limits)
    assert.same({ 2, 5 }, h.counts)
    assert.equal(7, h.num)
    assert.equal(4, h.step)
    assert.equal("nnvis", run.graph)                  -- nnvis's own diagram wins over the GraphDef
    assert.equal("<svg></svg>", run.graph_svg)
    assert.equal(2, #run.graph_nodes)
    assert.same({ "x" }, run.graph_nodes[2].inputs)
    assert.equal("Relu", run.graph_nodes[2].op)
    assert.equal("[1,3]", run.graph_nodes[1].attrs.shape)
    assert.is_nil(run.text["nnvis/graph_svg"])
  end)

  it("skips a record with a bad CRC with a warning naming the file and byte", function()
    local d = dir("badcrc")
    local recs = records({ event(1, summary(bytes(1, "loss") .. flt(2, 1))), event(2, summary(bytes(1, "loss") .. flt(2, 2))),
                           event(3, summary(bytes(1, "loss") .. flt(2, 3))) })
    local second = #recs[1]
    recs[2] = recs[2]:sub(1, -5) .. string.pack("<I4", 12345)      -- the data's CRC is wrong
    write(d .. "/events.out.tfevents.1", recs)
    local r = reader(d)
    assert.same({ 1, 3 }, r.runs["."].scalars.loss.step)
    assert.equal(1, #r.warnings)
    assert.equal("file ./events.out.tfevents.1: bad CRC at byte " .. second .. ", record skipped", r.warnings[1])
  end)

  it("resyncs after a bad length CRC at the next good record", function()
    local d = dir("badlen")
    local recs = records({ event(1, summary(bytes(1, "loss") .. flt(2, 1))), event(2, summary(bytes(1, "loss") .. flt(2, 2))),
                           event(3, summary(bytes(1, "loss") .. flt(2, 3))) })
    recs[2] = "\99" .. recs[2]:sub(2)                                 -- the length is damaged
    write(d .. "/events.out.tfevents.1", recs)
    local r = reader(d)
    assert.same({ 1, 3 }, r.runs["."].scalars.loss.step)
    assert.matches("bad length CRC at byte " .. #recs[1] .. ", skipped to byte " .. (#recs[1] + #recs[2]), r.warnings[1])
  end)

  it("waits for a record cut at the end and reads it once it is complete", function()
    local d = dir("cut")
    local recs = records({ event(1, summary(bytes(1, "loss") .. flt(2, 1))), event(2, summary(bytes(1, "loss") .. flt(2, 2))) })
    local path = d .. "/events.out.tfevents.1"
    write(path, { recs[1], recs[2]:sub(1, 10) })
    local r = reader(d)
    assert.same({ 1 }, r.runs["."].scalars.loss.step)
    assert.same({}, r.warnings)
    write(path, { recs[2]:sub(11) }, "ab")
    assert.is_true(r:poll())
    assert.same({ 1, 2 }, r.runs["."].scalars.loss.step)
    assert.same({}, r.warnings)
  end)

  it("reads a growing file on from where it was, and finds new files and runs", function()
    local d = dir("grow")
    local w = TB.writer(d .. "/a")
    w:scalar("loss", 1, 1):flush()
    local r = reader(d)
    local v = r.version
    assert.same({ "a" }, r.order)
    w:scalar("loss", 2, 2):scalar("loss", 3, 3):flush()
    assert.is_true(r:poll())
    assert.is_true(r.version > v)
    assert.same({ 1, 2, 3 }, r.runs.a.scalars.loss.step)
    assert.is_false(r:poll())                         -- nothing new: the version stays
    w:close()
    local w2 = TB.writer(d .. "/b/train")
    w2:scalar("epoch_loss", 0.5, 1):close()
    r:poll()
    assert.same({ "a", "b/train" }, r.order)
    assert.same({ 0.5 }, r.runs["b/train"].scalars.epoch_loss.value)
  end)

  it("names runs by the log dir's base name when several are read", function()
    TB.writer(dir("multi1/x")):scalar("l", 1, 1):close()
    TB.writer(dir("multi2")):scalar("l", 1, 1):close()
    local r = E.new({ tmp .. "/multi1", tmp .. "/multi2" })
    r:poll()
    assert.same({ "multi1/x", "multi2" }, r.order)
  end)

  it("does not follow a symlink that leads out of the log dir", function()
    TB.writer(dir("outside/run")):scalar("l", 1, 1):close()
    local d = dir("linked")
    TB.writer(d .. "/own"):scalar("l", 1, 1):close()
    assert(os.execute("ln -s '" .. tmp .. "/outside' '" .. d .. "/evil'"))
    local r = reader(d)
    assert.same({ "own" }, r.order)
  end)

  it("parses a projector config", function()
    local d = dir("proj")
    write(d .. "/projector_config.pbtxt", { [[
embeddings {
  tensor_name: "default:00000"
  tensor_path: "00000/default/tensors.tsv"
  metadata_path: "00000/default/metadata.tsv"
  sprite {
    image_path: "00000/default/sprite.png"
    single_image_dim: 28
    single_image_dim: 28
  }
}
]] })
    local e = assert(E.projector({ dir = d }))
    assert.equal("default:00000", e[1].name)
    assert.equal("00000/default/tensors.tsv", e[1].tensor_path)
    assert.equal("00000/default/sprite.png", e[1].sprite.image_path)
    assert.same({ 28, 28 }, e[1].sprite.single_image_dim)
  end)
end)
