-- nv.show and the figure protocol: each terminal protocol's bytes decoded back to the picture.
local nv = require "nnvis"
local core = require "nnvis.core"
local H = require "helpers"

-- a file handle writing to a temporary file, and the text written to it
local function capture(f)
  local path = os.tmpname()
  local out = assert(io.open(path, "wb"))
  f(out)
  out:close()
  local s = io.open(path, "rb"):read("a")
  os.remove(path)
  return s
end

local unbase64 = H.unbase64

-- decodes the sixel images nnvis writes: palette index per pixel (row-major, 1-based) and the
-- palette's colours in percent
local function unsixel(s)
  local body = assert(s:match("\27P[%d;]*q(.-)\27\\"), "no sixel DCS")
  local w, h = body:match('^"1;1;(%d+);(%d+)')
  w, h = tonumber(w), tonumber(h)
  local px, pal = {}, {}
  local i, x, y0, color = 1, 1, 0, 0
  body = body:gsub('^"[%d;]+', "")
  while i <= #body do
    local c = body:sub(i, i)
    if c == "#" then
      local num, r, g, b, rest = body:match("^#(%d+);2;(%d+);(%d+);(%d+)()", i)
      if num then pal[tonumber(num) + 1] = { tonumber(r), tonumber(g), tonumber(b) }; i = rest
      else num, rest = body:match("^#(%d+)()", i); color = tonumber(num) + 1; i = rest end
    elseif c == "$" then x = 1; i = i + 1
    elseif c == "-" then x = 1; y0 = y0 + 6; i = i + 1
    else
      local n, ch, rest = 1, c, i + 1
      if c == "!" then
        local cnt
        cnt, ch, rest = body:match("^!(%d+)(.)()", i)
        n = tonumber(cnt)
      end
      local v = ch:byte() - 63
      for _ = 1, n do
        for r = 0, 5 do
          if v >> r & 1 == 1 then px[(y0 + r) * w + x] = color end
        end
        x = x + 1
      end
      i = rest
    end
  end
  return px, pal, w, h
end

-- the PNG bytes decode to img enlarged (nearest neighbour) to h x w
local function assert_enlarged(png, img, h, w)
  local back = core.png_load_bytes(png, "rgb")
  assert.same({ 3, h, w }, back:shape())
  H.close(back, nv.interpolate(img:unsqueeze(1), { size = { h, w }, mode = "nearest" }):squeeze(1), 1 / 255 + 1e-6)
end

local function picture()
  nv.manual_seed(3)
  return nv.rand(3, 12, 20)
end

describe("nnvis.draw.figure", function()
  it("gives every drawing a figure with png, save by extension, a mimebundle and a one-line description", function()
    local img = nv.plot.line({ loss = { 3, 2, 1 } }, { title = "loss" })
    local fig = nv.figure.of(img)
    assert.is_true(nv.figure.is_figure(fig))
    assert.equal('[nnvis figure: line plot "loss", 640x400]', tostring(fig))
    local back = core.png_load_bytes(fig:png(), "rgb")
    H.close(back, img, 1 / 255 + 1e-6)
    local b = fig:mimebundle()
    assert.equal(fig:png(), b["image/png"])
    assert.equal(tostring(fig), b["text/plain"])
    assert.truthy(fig:svg():find("<svg", 1, true))   -- drawn through Cairo: a vector form too
    assert.equal(fig:svg(), b["image/svg+xml"])
    local path = os.tmpname() .. ".png"
    assert(fig:save(path))
    assert.same({ 3, 400, 640 }, nv.image.load(path):shape())
    os.remove(path)
    assert.has_error(function() fig:save("x.gif") end, "save: cannot tell the format of 'x.gif' (png, jpg, svg, pdf, html, txt)")
  end)

  it("describes heatmaps, histograms, grids, feature maps and filters", function()
    assert.truthy(tostring(nv.figure.of(nv.image.heatmap(nv.randn(4, 4), { title = "w" }))):find('heatmap "w"', 1, true))
    assert.truthy(tostring(nv.figure.of(nv.plot.histogram(nv.randn(100)))):find("histogram", 1, true))
    assert.truthy(tostring(nv.figure.of(nv.image.grid(nv.rand(4, 1, 8, 8)))):find("grid of 4 images", 1, true))
    local m = nv.models.fashion_cnn()
    local x = nv.rand(1, 28, 28)
    assert.truthy(tostring(nv.figure.of((nv.features.maps(m, x, "features.0")))):find('feature maps "features.0"', 1, true))
    assert.truthy(tostring(nv.figure.of(nv.features.filters(m, "features.0"))):find('filters "features.0"', 1, true))
    assert.truthy(tostring(nv.figure.of(nv.cam.compare(m, x, { methods = { "gradcam", "layercam" } })))
      :find('CAM comparison', 1, true))
  end)

  it("makes summaries and diagrams figures that keep their own printing and save_png/save_svg", function()
    local m = nv.models.fashion_cnn()
    local s = nv.summary(m, { 1, 1, 28, 28 })
    assert.is_true(nv.figure.is_figure(s))
    assert.truthy(tostring(s):find("Total params: 207,018", 1, true))
    assert.truthy(s:html():find("<table", 1, true))
    assert.truthy(s:mimebundle()["text/html"])
    assert.truthy(s:describe():find("summary of FashionCNN", 1, true))
    local d = nv.diagram(m, { 1, 1, 28, 28 })
    assert.is_true(nv.figure.is_figure(d))
    assert.truthy(tostring(d):find("^%[nnvis figure: diagram of FashionCNN"))
    assert.truthy(d:mimebundle()["image/svg+xml"]:find("<svg", 1, true))
    local p = os.tmpname()
    assert(d:save(p .. ".svg"))
    assert.equal(d:svg(), io.open(p .. ".svg"):read("a"))
    os.remove(p .. ".svg"); os.remove(p)
  end)
end)

describe("nv.show", function()
  it("sends kitty's graphics protocol in 4096-byte base64 chunks that decode to the PNG", function()
    local img = nv.rand(3, 30, 50)
    local s = capture(function(out) nv.show(img, { mode = "kitty", out = out }) end)
    local chunks, keys = {}, {}
    for k, data in s:gmatch("\27_G([^;]*);([^\27]*)\27\\") do keys[#keys + 1] = k; chunks[#chunks + 1] = data end
    assert.truthy(#chunks > 1)
    assert.truthy(keys[1]:find("f=100,a=T", 1, true))
    for i = 1, #chunks - 1 do assert.equal(4096, #chunks[i]); assert.truthy(keys[i]:find("m=1", 1, true)) end
    assert.truthy(keys[#keys]:find("m=0", 1, true))
    assert_enlarged(unbase64(table.concat(chunks)), img, 180, 300)   -- 50 wide -> 300 (factor 6)
  end)

  it("sends iTerm2's inline image with the PNG's size", function()
    local img = picture()
    local s = capture(function(out) nv.show(img, { mode = "iterm", out = out, width = 40 }) end)
    local size, data = s:match("^\27%]1337;File=inline=1;size=(%d+);[^:]*:([^\7]*)\7")
    local png = unbase64(data)
    assert.equal(tonumber(size), #png)
    assert_enlarged(png, img, 24, 40)
  end)

  it("encodes sixel that decodes to the quantized image", function()
    local img = picture()
    local s = capture(function(out) nv.show(img, { mode = "sixel", out = out, min_size = 1 }) end)
    local px, pal, w, h = unsixel(s)
    assert.equal(20, w); assert.equal(12, h)
    local want = nv.show.quantize(img)
    local palette = nv.show.sixel_palette()
    for i = 1, w * h do
      assert.equal(want[i], px[i])
      for k = 1, 3 do assert.is_true(math.abs(pal[px[i]][k] - palette[px[i]][k] * 100) <= 0.5) end
    end
    -- the quantized colour is near the original: no farther than the cube's half step
    local v = img:contiguous():values()
    for i = 1, w * h do
      local c, e = palette[want[i]], 0
      for k = 1, 3 do e = e + (c[k] - v[(k - 1) * w * h + i]) ^ 2 end
      assert.is_true(e <= 3 * 0.1 ^ 2 + 1e-6)
    end
  end)

  it("writes a PNG file and prints its path, and shows nothing in mode none", function()
    local s = capture(function(out) nv.show(nv.rand(2, 1, 8, 8), { mode = "file", out = out }) end)
    local path = s:match("saved to (%S+)")
    assert.truthy(s:find("batch of 2 images", 1, true))
    local back = assert(nv.image.load(path))
    assert.is_true(math.max(back:size(2), back:size(3)) >= 256)
    os.remove(path)
    assert.equal("", capture(function(out) nv.show(nv.rand(3, 4, 4), { mode = "none", out = out }) end))
  end)

  it("hands the mimebundle to a registered display target", function()
    local got
    nv.show.set_display(function(bundle, opts) got = bundle end)
    local ok, err = pcall(nv.show, nv.randn(3, 3))
    nv.show.set_display(nil)
    assert(ok, err)
    assert.truthy(got["image/png"]:sub(1, 8) == "\137PNG\r\n\26\n")
    assert.truthy(got["text/plain"]:find("heatmap", 1, true))
  end)

  it("detects the terminal from its environment", function()
    local function env(t) return function(k) return t[k] end end
    assert.equal("kitty", nv.show.detect(env { TERM = "xterm-kitty" }))
    assert.equal("kitty", nv.show.detect(env { KITTY_WINDOW_ID = "1", TERM = "xterm-256color" }))
    assert.equal("iterm", nv.show.detect(env { TERM_PROGRAM = "iTerm.app" }))
    assert.equal("sixel", nv.show.detect(env { TERM = "mlterm" }))
    assert.equal("file", nv.show.detect(env { TERM = "xterm-256color" }))
    assert.equal("file", nv.show.detect(env { TERM = "xterm-kitty" }, false))
    assert.equal("none", nv.show.detect(env { NNVIS_SHOW = "none", TERM = "xterm-kitty" }))
    assert.has_error(function() nv.show.detect(env { NNVIS_SHOW = "pdf" }) end)
    assert.has_error(function() nv.show({}) end, "show: not a figure or a tensor: table")
  end)
end)

describe("what the REPL prints", function()
  local function tiny()
    nv.manual_seed(1)
    local model = nv.nn.Sequential { nv.nn.Linear(4, 3) }
    local x = nv.randn(32, 4)
    local y = (x:narrow(2, 1, 1):gt(0):view(-1) + 1)
    return model, x, y
  end

  it("prints shapes, config, optimizers, captures and histories as text", function()
    local s = nv.zeros(2, 3):shape()
    assert.equal("(2, 3)", tostring(s))
    assert.equal(2, #s)
    assert.equal("2x3", table.concat(s, "x"))
    assert.same({ 2, 3 }, { table.unpack(s) })
    assert.is_true(s == nv.ones(2, 3):shape())
    assert.truthy(tostring(nv.config()):find("^nnvis config: .* threads?, grad on"))
    local model, x, y = tiny()
    assert.truthy(tostring(nv.optim.Adam(model:parameters())):find("^Adam%(lr=0.001, betas={0.9, 0.999}.*; 2 tensors, 15 values; 0 steps%)$"))
    local cap = nv.capture(model, x, { layers = { "0" }, grads = true })
    assert.equal("capture of 1 layer:\n  0                        output (32,3)  grad (32,3)", tostring(cap))
    local hist = nv.train.fit(model, { x = x, y = y, epochs = 2, batch_size = 16, progress = false, out = io.open("/dev/null", "w") })
    assert.truthy(tostring(hist):find("^training history: 2 epochs, 4 steps\n  step loss"))
    assert.truthy(tostring(nv.figure.of(hist:plot())):find('training curves "training curves: 2 epochs, 4 steps"', 1, true))
  end)

  it("redraws the training curves after each epoch when fit runs live", function()
    local model, x, y = tiny()
    local s = capture(function(out)
      nv.train.fit(model, { x = x, y = y, epochs = 2, batch_size = 16, progress = false, out = out, live = true, live_mode = "kitty" })
    end)
    assert.equal(2, select(2, s:gsub("\27_Gf=100,a=T", "")))
    assert.equal(2, select(2, s:gsub("\27_Ga=d,d=I,i=7001", "")))
    s = capture(function(out)
      nv.train.fit(model, { x = x, y = y, epochs = 2, batch_size = 16, progress = false, out = out, live = true, live_mode = "text" })
    end)
    assert.equal(2, select(2, ("\n" .. s):gsub("\nloss [▁▂▃▄▅▆▇█]+ %d", "")))
    s = capture(function(out) nv.train.fit(model, { x = x, y = y, epochs = 1, batch_size = 16, progress = false, out = out }) end)
    assert.falsy(s:find("\27", 1, true))
  end)
end)
