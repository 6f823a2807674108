-- Interactive figures (nnvis.interactive) in headless Chromium, as a person uses them: the value
-- under the pointer, wheel zoom, double click to reset; nothing fetched from anywhere.
local nv = require "nnvis"
local H = require "helpers"

local CHROMIUM = "/usr/bin/chromium"
local function have_chromium() local f = io.open(CHROMIUM) if f then f:close() return true end return false end

local function chromium(dir, args)
  local cmd = string.format("env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS timeout 60 " ..
    "%s --headless=new --no-sandbox --disable-gpu --hide-scrollbars --disable-background-networking " ..
    "--user-data-dir=%s/profile %s 2>/dev/null", CHROMIUM, dir, args)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end

-- a page with the fragment and a probe that points at data point k of figure `id`, zooms
-- with the wheel, then double-clicks, recording what the figure says after each
local function probe_page(fragment, k)
  return "<!DOCTYPE html><html><body style=\"margin:0\">" .. fragment .. [[
<script>window.addEventListener('load',function(){
var root=document.querySelector('.nnvis-interactive'),svg=root.querySelector('svg'),pt=root.nnvisPoints[]] .. (k - 1) .. [[];
var r=svg.getBoundingClientRect(),vb=svg.viewBox.baseVal;
function client(x,y){return{clientX:r.left+(x-vb.x)/vb.width*r.width,clientY:r.top+(y-vb.y)/vb.height*r.height,bubbles:true};}
svg.dispatchEvent(new MouseEvent('mousemove',client(pt[0],pt[1])));
document.body.setAttribute('data-hover-seen',root.getAttribute('data-hover')||'none');
document.body.setAttribute('data-tip',root.querySelector('.nnvis-tip').style.display);
svg.dispatchEvent(new WheelEvent('wheel',Object.assign(client(pt[0],pt[1]),{deltaY:-100,cancelable:true})));
document.body.setAttribute('data-zoom-in',root.getAttribute('data-zoom'));
svg.dispatchEvent(new MouseEvent('dblclick',{bubbles:true}));
document.body.setAttribute('data-zoom-reset',root.getAttribute('data-zoom'));
document.body.setAttribute('data-n',root.nnvisPoints.length);});</script></body></html>]]
end

describe("interactive figures", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
  end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  it("a line plot's HTML has its points, and the script, inline: nothing fetched", function()
    local fig = nv.figure.of(nv.plot.line({ loss = { 2.5, 1.25, 0.5 } }, { xlabel = "epoch", ylabel = "loss" }))
    local html = fig:html()
    assert.truthy(html:find("<svg", 1, true))
    assert.truthy(html:find("loss: epoch = 2, loss = 1.25", 1, true))
    assert.is_nil(html:find("https?://[%w.]*/[%w/]*%.js"))
    assert.is_nil(html:find("src=\"http", 1, true))
    assert.truthy(fig:mimebundle()["text/html"])
    -- a picture without data points stays a PNG
    assert.is_nil(nv.figure.of(nv.rand(3, 8, 8)):html())
    -- two figures in one page never share an id (Cairo names its glyphs alike in every SVG:
    -- shared, the second figure's text drew the first one's letters)
    local other = nv.figure.of(nv.plot.line({ 1, 2 })):html()
    local ids = {}
    for id in html:gmatch('id="([^"]+)"') do ids[id] = true end
    local n = 0
    for id in other:gmatch('id="([^"]+)"') do n = n + 1; assert.is_nil(ids[id], id) end
    assert.is_true(n > 3)
    for ref in other:gmatch('href="#([^"]+)"') do assert.truthy(other:find('id="' .. ref .. '"', 1, true), ref) end
  end)

  it("answers a hover with the value at that point, zooms with the wheel and resets, in Chromium", function()
    if not have_chromium() then H.missing("Debian's chromium is not installed (make deps installs it)") return end
    local fig = nv.figure.of(nv.plot.line({ loss = { 2.5, 1.25, 0.5 } }, { xlabel = "epoch", ylabel = "loss" }))
    local f = assert(io.open(dir .. "/p.html", "w"))
    f:write(probe_page(fig:html(), 2))
    f:close()
    local dom = chromium(dir, "--virtual-time-budget=5000 --dump-dom file://" .. dir .. "/p.html")
    assert.equal("loss: epoch = 2, loss = 1.25", dom:match('data%-hover%-seen="([^"]*)"'), dom:sub(1, 300))
    assert.equal("block", dom:match('data%-tip="([^"]*)"'))
    assert.is_true(tonumber(dom:match('data%-zoom%-in="([^"]*)"')) > 1.1)
    assert.equal("1.000", dom:match('data%-zoom%-reset="([^"]*)"'))
    assert.equal("3", dom:match('data%-n="([^"]*)"'))
  end)

  it("a heatmap's cells stay cells in SVG (browsers smooth SVG images: each cell is stored as a block)", function()
    local svg = nv.figure.of(nv.image.heatmap(nv.tensor { { 1, 2 }, { 3, 4 } })):svg()
    local w, h = svg:match('<image[^>]- width="(%d+)" height="(%d+)"')
    assert.is_true(tonumber(w) >= 100 and tonumber(h) >= 100 and tonumber(w) % 2 == 0, w .. "x" .. h)
  end)

  it("a heatmap's cell and a histogram's bar answer a hover too", function()
    if not have_chromium() then H.missing("Debian's chromium is not installed (make deps installs it)") return end
    local hm = nv.figure.of(nv.image.heatmap(nv.tensor { { 1, 2 }, { 3, 4 } }))
    local f = assert(io.open(dir .. "/h.html", "w"))
    f:write(probe_page(hm:html(), 3))
    f:close()
    local dom = chromium(dir, "--virtual-time-budget=5000 --dump-dom file://" .. dir .. "/h.html")
    assert.equal("row 2, column 1: 3", dom:match('data%-hover%-seen="([^"]*)"'))
    local hist = nv.figure.of(nv.plot.histogram({ 1, 2, 2, 3 }, { bins = 3 }))
    f = assert(io.open(dir .. "/b.html", "w"))
    f:write(probe_page(hist:html(), 2))
    f:close()
    dom = chromium(dir, "--virtual-time-budget=5000 --dump-dom file://" .. dir .. "/b.html")
    assert.equal("[1.667, 2.333): 2", dom:match('data%-hover%-seen="([^"]*)"'))
  end)
end)

describe("the report's diagram", function()
  it("takes the page's width and zooms with the wheel in Chromium; a click on a layer still opens its section", function()
    if not have_chromium() then H.missing("Debian's chromium is not installed (make deps installs it)") return end
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local nn = nv.nn
    local m = nn.Sequential { nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3) }
    local page = nv.report(m, nv.rand(2, 1, 8, 8), { samples = 0, feature_layers = {} }):document()
    local probe = [[<script>window.addEventListener('load',function(){
      var root=document.querySelector('.diagram .nnvis-interactive'),svg=root.querySelector('svg'),r=svg.getBoundingClientRect();
      document.body.setAttribute('data-width',Math.round(r.width)+'/'+Math.round(document.querySelector('.diagram').getBoundingClientRect().width));
      svg.dispatchEvent(new WheelEvent('wheel',{clientX:r.left+r.width/2,clientY:r.top+r.height/2,deltaY:-100,bubbles:true,cancelable:true}));
      document.body.setAttribute('data-zoom-in',root.getAttribute('data-zoom'));});</script>]]
    local f = assert(io.open(dir .. "/r.html", "w"))
    f:write((page:gsub("</body>", function() return probe .. "</body>" end)))
    f:close()
    local dom = chromium(dir, "--window-size=800,1200 --virtual-time-budget=5000 --dump-dom file://" .. dir .. "/r.html")
    os.execute("rm -rf " .. dir)
    assert.is_true(tonumber(dom:match('data%-zoom%-in="([^"]*)"')) > 1.1)
    local w, box = dom:match('data%-width="(%d+)/(%d+)"')
    assert.truthy(w, dom:sub(1, 200))
    assert.is_true(tonumber(w) > 0)
  end)
end)
