-- nv.report: what the page holds (sections, embedded pictures that decode, warnings that find
-- a constructed dead layer and an exploding gradient), that it is self-contained, and, in
-- headless Chromium, that it renders: its images decode, a click on a diagram node jumps to
-- the layer's section, and a screenshot shows the CAMs' colours.
local nv = require "nnvis"
local core = require "nnvis.core"
local nn = nv.nn

local CHROMIUM = "/usr/bin/chromium"
local function have_chromium()
  local f = io.open(CHROMIUM, "rb")
  if f then f:close() return true end
  return false
end

local H = require "helpers"
local unbase64 = H.unbase64

local function small_cnn()
  nv.manual_seed(3)
  return nn.Sequential { nn.Conv2d(1, 8, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 8, 3, { padding = 1 }), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3) }
end

local read = H.read_all

describe("nv.report", function()
  local model, x, hist, r, page
  setup(function()
    model = small_cnn()
    nv.manual_seed(4)
    x = nv.randn(6, 1, 16, 16)
    local y = core.tensor({ 1, 2, 3, 1, 2, 3 })
    hist = nv.train.fit(model, { x = x, y = y, epochs = 2, batch_size = 3, progress = false,
      out = { write = function() end, flush = function() end } })
    r = nv.report(model, x, { classes = { "cat", "dog", "owl" }, history = hist, samples = 3, steps = 8,
      cam_methods = { "gradcam", "layercam" } })
    page = r:document()
  end)

  it("is a figure whose page has every section", function()
    assert.is_true(nv.figure.is_figure(r))
    for _, id in ipairs({ "summary", "diagram", "statistics", "cams", "training", "layers" }) do
      assert.truthy(page:find('id="' .. id .. '"', 1, true), id)
    end
    -- a section per leaf layer, reached from the statistics table
    for _, name in ipairs({ "0", "1", "3", "7" }) do
      assert.truthy(page:find('<section class="layer" id="layer-' .. name .. '"', 1, true), name)
      assert.truthy(page:find('href="#layer-' .. name .. '"', 1, true), name)
    end
    assert.truthy(page:find("Total params", 1, true))
    assert.truthy(page:find("<svg", 1, true))
    assert.truthy(page:find("deletion AUC", 1, true))
    assert.truthy(page:find("insertion AUC", 1, true))
    assert.truthy(page:find("layercam", 1, true))
    -- the predicted class names appear under the CAMs
    local named = page:find("cat, p =", 1, true) or page:find("dog, p =", 1, true) or page:find("owl, p =", 1, true)
    assert.truthy(named)
  end)

  it("is self-contained: every picture embedded, nothing fetched", function()
    assert.falsy(page:find('src="http', 1, true))
    assert.falsy(page:find("<link", 1, true))
    for src in page:gmatch('src="([^"]*)"') do assert.equal("data:image/png;base64,", src:sub(1, 22)) end
    -- each embedded PNG decodes, at the size its tag says (times the figure's scale)
    local n = 0
    for w, h, b64 in page:gmatch('width="(%d+)" height="(%d+)"[^>]-src="data:image/png;base64,([^"]+)"') do n = n + 1 end
    for b64, w, h in page:gmatch('src="data:image/png;base64,([^"]+)" width="(%d+)" height="(%d+)"') do
      local path = os.tmpname() .. ".png"
      local f = assert(io.open(path, "wb"))
      f:write(unbase64(b64))
      f:close()
      local img = assert(nv.image.load(path))
      os.remove(path)
      -- shown at its size in points: the pixels are the same or twice as many
      local sx, sy = img:size(3) / tonumber(w), img:size(2) / tonumber(h)
      assert.is_true(math.abs(sx - 1) < 0.02 or math.abs(sx - 2) < 0.02, "x scale " .. sx)
      assert.is_true(math.abs(sy - sx) < 0.05, "same scale both ways")
      n = n + 1
    end
    -- 6 CAM panels and feature maps of 3 layers as pictures; the curves (loss, accuracy) and 3
    -- weight histograms (2 convs, the linear) as interactive figures (SVG and their script)
    assert.is_true(n >= 6 + 3, "images: " .. n)
    local interactive = select(2, page:gsub('class="nnvis%-interactive"', ""))
    assert.is_true(interactive >= 2 + 3, "interactive figures: " .. interactive)
  end)

  it("warns about a dead layer and an exploding gradient, and names them", function()
    nv.manual_seed(5)
    local m = nn.Sequential { nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3) }
    nv.no_grad(function() m:get("0").bias:fill(-100) end)           -- every unit of the ReLU after it is 0: dead
    local rep = nv.report(m, nv.rand(2, 1, 8, 8), { samples = 1, steps = 4, feature_layers = {} })
    local kinds = {}
    for _, f in ipairs(rep.findings) do kinds[f.layer .. ":" .. f.kind] = true end
    assert.is_true(kinds["1:dead"])
    assert.truthy(rep:document():find("dead units: 100%", 1, true))
    assert.truthy(rep:text():find("1: dead units", 1, true))

    local e = nn.Sequential { nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2) }
    nv.no_grad(function() e:get("2").weight:fill(1e5) end)
    local rep2 = nv.report(e, nv.randn(2, 4), { samples = 0, feature_layers = {} })
    local found = false
    for _, f in ipairs(rep2.findings) do if f.kind == "exploding" then found = true end end
    assert.is_true(found)
    -- the healthy model has none
    assert.equal(0, #r.findings)
  end)

  it("refuses what it cannot use, naming the argument", function()
    assert.has_error(function() nv.report(model, "x") end,
      "report: expected an input batch (N,C,H,W) or (N,features), or one image (C,H,W), as argument 2, got string")
    assert.has_error(function() nv.report(model, x, { histogram = false }) end)
    assert.has_error(function() nv.report(model, x, { cam_methods = { "nope" }, samples = 1 }) end,
      "report: 'nope' is not an nv.cam method")
  end)

  it("gives the notebook an HTML bundle", function()
    local b = r:mimebundle()
    assert.truthy(b["text/html"]:find('class="nnvis-report"', 1, true))
    assert.equal("\137PNG", b["image/png"]:sub(1, 4))
    assert.truthy(b["text/plain"]:find("[nnvis report:", 1, true))
  end)

  describe("in headless Chromium", function()
    local dir = os.tmpname()
    os.remove(dir)
    local function chromium(args)
      -- without the sanitizer runtimes `make test SANITIZE=1` preloads (Chromium spins under
      -- them), and never longer than a minute
      local cmd = string.format("env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS timeout 60 " ..
        "%s --headless=new --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=%s/profile %s 2>/dev/null",
        CHROMIUM, dir, args)
      local p = assert(io.popen(cmd))
      local out = p:read("a")
      p:close()
      return out
    end

    it("renders the sections with their images decoded, and a click on a layer opens its section", function()
      if not have_chromium() then H.missing("Debian's chromium is not installed (make deps installs it)") return end
      os.execute("mkdir -p " .. dir)
      -- the page as saved, plus a probe that records what the browser decoded and where a
      -- click on the diagram's node of layer 3 leads
      assert(r:save(dir .. "/report.html"))
      local probe = [[<script>window.addEventListener('load',function(){
        var imgs=document.images,ok=0;for(var i=0;i<imgs.length;i++){if(imgs[i].complete&&imgs[i].naturalWidth>0)ok++;}
        document.body.setAttribute('data-decoded',ok+'/'+imgs.length);
        var g=document.querySelector('.diagram g.node[data-layer="3"]');
        if(g){g.dispatchEvent(new MouseEvent('click',{bubbles:true}));}
        document.body.setAttribute('data-hash',location.hash);
        var s=document.querySelectorAll('section.layer').length;document.body.setAttribute('data-sections',s);});</script>]]
      local f = assert(io.open(dir .. "/probe.html", "wb"))
      f:write((read(dir .. "/report.html"):gsub("</body>", function() return probe .. "</body>" end)))
      f:close()
      local dom = chromium("--virtual-time-budget=5000 --dump-dom file://" .. dir .. "/probe.html")
      local ok, total = dom:match('data%-decoded="(%d+)/(%d+)"')
      assert.truthy(ok, "the probe ran")
      assert.equal(total, ok)
      assert.is_true(tonumber(total) >= 9)
      assert.equal("#layer-3", dom:match('data%-hash="([^"]*)"'))
      assert.equal("8", dom:match('data%-sections="(%d+)"'))

      -- the screenshot shows the page: the CAM overlays' saturated colours and dark text
      chromium("--window-size=1000,2400 --screenshot=" .. dir .. "/shot.png file://" .. dir .. "/report.html")
      local shot = assert(nv.image.load(dir .. "/shot.png"))
      assert.equal(1000, shot:size(3))
      local rgb = shot:narrow(1, 1, 3)
      local sat = (rgb:max(1) - rgb:min(1)):gt(0.5):sum():item()
      local dark = rgb:max(1):lt(0.2):sum():item()
      assert.is_true(sat > 5000, "saturated pixels: " .. sat)
      assert.is_true(dark > 2000, "dark (text) pixels: " .. dark)
      os.execute("rm -rf " .. dir)
    end)
  end)
end)
