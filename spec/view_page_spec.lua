-- The model viewer (nnvis view): its handler's answers, and its page in headless Debian Chromium.
-- A ResNet-18 (random weights, 10 classes) with an input image is served by nnvis.ui.view.serve;
-- spec/view_browser.js drives the page (zoom, fold, search, a node's details, feature maps,
-- Grad-CAM, SVG and PNG export) and prints what it saw as a Lua table.
local nv = require "nnvis"
local H = require "helpers"

local has_http = pcall(require, "nnvis.http")
local node_ok = os.execute("command -v node >/dev/null 2>&1 && test -x /usr/bin/chromium && test -d build/node/node_modules/playwright-core")

local function tmpdir()
  local d = os.tmpname(); os.remove(d)
  os.execute("mkdir -p '" .. d .. "'")
  return d
end
local function write_file(path, s) local f = assert(io.open(path, "wb")); f:write(s); f:close() end

-- the scope a node folds into, as the page reads graph.json: a module's own scope; an op outside
-- any module (a residual add) goes with the common scope of the nodes it feeds
local function scopes_of(g)
  local by, succ = {}, {}
  for _, n in ipairs(g.nodes) do by[n.id] = n; succ[n.id] = {} end
  for _, n in ipairs(g.nodes) do for _, p in ipairs(n.preds) do table.insert(succ[p], n.id) end end
  local scope = {}
  local function common(a, b)
    local i, pa, pb = 0, {}, {}
    for s in (a .. "."):gmatch("([^.]*)%.") do pa[#pa + 1] = s end
    for s in (b .. "."):gmatch("([^.]*)%.") do pb[#pb + 1] = s end
    while pa[i + 1] and pa[i + 1] == pb[i + 1] do i = i + 1 end
    return table.concat(pa, ".", 1, i)
  end
  for k = #g.nodes, 1, -1 do
    local n = g.nodes[k]
    if n.scope ~= "" or n.kind == "input" or n.config then scope[n.id] = n.scope
    else
      local around = #succ[n.id] > 0 and succ[n.id] or n.preds
      local s
      for _, i in ipairs(around) do local t = scope[i] or by[i].scope; s = s and common(s, t) or t end
      scope[n.id] = s or ""
    end
  end
  return scope
end

describe("nnvis.ui.view.server", function()
  if not has_http then it("runs", function() H.missing("nnvis.http is not built (make)") end); return end
  local S = require "nnvis.ui.view.server"
  local dir
  setup(function()
    dir = tmpdir()
    os.execute("mkdir -p '" .. dir .. "/maps' '" .. dir .. "/cam'")
    write_file(dir .. "/graph.json", '{"nodes":[]}')
    write_file(dir .. "/maps/3.png", "\137PNG\r\n\26\nmaps")
    write_file(dir .. "/secret.txt", "no")
    S.init(string.format("{dir = %q}", dir))
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("serves the page, its scripts (graph.js from the board's page) and the prepared folder", function()
    for path, ctype in pairs { ["/"] = "text/html", ["/static/view.js"] = "text/javascript", ["/static/view.css"] = "text/css",
                               ["/static/graph.js"] = "text/javascript", ["/data/graph.json"] = "application/json",
                               ["/data/maps/3.png"] = "image/png" } do
      local status, h, body = S.handle("GET", path, {})
      assert.equal(200, status, path)
      assert.truthy(h["Content-Type"]:find(ctype, 1, true), path .. ": " .. h["Content-Type"])
      assert.is_true(#body > 0)
    end
    assert.truthy(S.headers["Content-Security-Policy"]:find("default-src 'none'", 1, true))
    assert.equal("nosniff", S.headers["X-Content-Type-Options"])
  end)

  it("answers 404 to traversal, encoded dots and slashes, backslashes, NULs and anything else", function()
    for _, path in ipairs { "/static/../init.lua", "/static/%2e%2e/init.lua", "/static/%2E%2E%2Fserver.lua", "/data/../graph.json",
                            "/data/maps/..%2f..%2fgraph.json", "/static/..%5cserver.lua", "/data/maps/3.png%00", "/data/secret.txt",
                            "/data/maps/x.png", "/data/cam/3.png", "/data/input.png", "/static/", "/api/runs", "/static/.hidden",
                            "/data/maps/%33.png" } do
      local status = S.handle("GET", path, {})
      assert.equal(404, status, path)
    end
  end)

  it("refuses a file of the folder that is a symlink leading out of it", function()
    os.execute("ln -s /etc/passwd '" .. dir .. "/cam/7.png'")
    assert.equal(404, (S.handle("GET", "/data/cam/7.png", {})))
  end)
end)

describe("nnvis view's page", function()
  if not has_http then it("runs", function() H.missing("nnvis.http is not built (make)") end); return end
  if not node_ok then
    it("runs", function() H.missing("node, /usr/bin/chromium or build/node/node_modules/playwright-core is missing (make deps)") end)
    return
  end
  local out, raw, graph, served_dir
  setup(function()
    nv.manual_seed(3)
    local m = nv.models.resnet18 { num_classes = 10 }
    local v = require("nnvis.ui.view").serve { model = m, input = nv.rand(1, 3, 64, 64), port = 0, title = "resnet18",
                  classes = { "plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" } }
    graph, served_dir = v.graph, v.dir
    local dl = tmpdir()
    local ok, res = pcall(function()
      -- as a fresh shell runs it (H.CLEAN): not under the sanitizers' preloaded runtimes
      local p = io.popen(H.CLEAN .. string.format("node spec/view_browser.js '%s' build/view.png '%s' 2>&1", v.url, dl))
      local text = p:read("a"); p:close()
      return text
    end)
    v:close()
    os.execute("rm -rf '" .. dl .. "'")
    assert(ok, res)
    raw = res
    local chunk = load(res:match("return {.*}") or "return nil", "=view_browser.js", "t", {})
    out = chunk and chunk() or { fatal = "the browser script printed no result: " .. res:sub(1, 600) }
  end)

  it("loads without a script error and requests nothing from another host", function()
    assert.is_nil(out.fatal, out.fatal)
    assert.same({}, out.errors)
    assert.same({}, out.foreign)
    assert.truthy(#out.requests >= 5, raw:sub(1, 300))
  end)

  it("heads the page with the title, the parameters with separators, the input shape and the prediction", function()
    assert.equal("resnet18", out.header.title)
    assert.truthy(out.header.facts:find("11,181,642", 1, true), out.header.facts)
    assert.truthy(out.header.facts:find("[1,3,64,64]", 1, true))
    local names = { "plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck" }
    assert.truthy(out.header.facts:find(names[graph.prediction.class], 1, true))
  end)

  it("draws a box per node (under 300 nodes: every scope open), zooms on the wheel and pans on a drag", function()
    assert.equal(#graph.nodes, out.boxes)
    local z = out.zoom
    assert.is_true(z.wheel[3] < z.before[3], "the wheel did not zoom in")
    assert.is_true(z.drag[1] ~= z.wheel[1] and z.drag[3] == z.wheel[3], "the drag did not pan")
  end)

  it("folds layer1 into one box and unfolds it, as its scopes say", function()
    local scope, inside = scopes_of(graph), 0
    for _, n in ipairs(graph.nodes) do
      local s = scope[n.id]
      if s == "layer1" or s:sub(1, 7) == "layer1." then inside = inside + 1 end
    end
    assert.equal(14, inside)                 -- two blocks of conv, bn, relu, conv, bn, add, relu
    assert.equal(out.boxes - inside + 1, out.folded.boxes)
    assert.equal(1, out.folded.scope_box)
    assert.truthy(out.folded.text:find("147,968 params", 1, true), out.folded.text)
    assert.equal(out.boxes, out.unfolded.boxes)
    -- folded to the top level: the stem, four stages, avgpool, flatten, fc
    assert.equal(12, out.collapsed.boxes)
    assert.same({ "scope:layer1", "scope:layer2", "scope:layer3", "scope:layer4" }, out.collapsed.scopes)
  end)

  it("finds a node by name and centres it, and every node of a type by its type", function()
    local s = out.search
    assert.is_true(s.hit and s.current)
    assert.equal("1 / 1", s.count)
    assert.is_true(math.abs(s.dx) < 2 and math.abs(s.dy) < 2, string.format("off centre by %.1f, %.1f", s.dx, s.dy))
    assert.equal("20 found", out.search_kind.count)
    assert.equal(20, out.search_kind.hits)
  end)

  it("shows a node's kind, parameters with separators, config and weight statistics with a histogram", function()
    local p = out.panel
    assert.equal("layer4.1.conv2", p.title)
    assert.equal("Conv2d", p.kind)
    assert.equal("2,359,296", p.cells.parameters)
    assert.equal("[1,512,2,2]", p.cells["output shape"])
    assert.truthy(p.cells["input shapes"]:find("layer4.1.relu", 1, true))
    assert.is_true(p.config >= 5)
    assert.same({ "weight" }, p.weights)
    assert.equal(30, p.bars)
    assert.truthy(p.stats:find("mean", 1, true) and p.stats:find("zeros", 1, true))
  end)

  it("loads the node's feature maps and, on the button, its Grad-CAM", function()
    assert.truthy(out.maps.src:match("^/data/maps/%d+%.png$"))
    assert.is_true(out.maps.w > 0)
    assert.equal(0, out.cam_before)
    assert.is_true(out.cam.shown)
    assert.truthy(out.cam.src:match("^/data/cam/%d+%.png$"))
    assert.equal(64, out.cam.w)
    assert.truthy(out.cam.caption:find("Grad-CAM", 1, true))
  end)

  it("exports the graph as drawn to SVG and PNG, in the page", function()
    assert.equal("resnet18.svg", out.svg.name)
    assert.truthy(out.svg.head:find("<svg", 1, true))
    assert.equal(out.boxes, out.svg.nodes)
    assert.is_true(out.svg.has_name)
    assert.is_false(out.svg.script)
    assert.is_true(out.png.magic)
    assert.is_true(out.png.width > 200 and out.png.height > 1000)
  end)

  it("answers 404 to traversal sent as written, with the CSP and nosniff on every answer", function()
    for path, r in pairs(out.raw) do
      local want = (path == "/" or path == "/static/view.js" or path == "/static/graph.js" or path == "/data/graph.json"
                    or path == "/data/input.png") and 200 or 404
      assert.equal(want, r.status, path)
      assert.truthy(r.csp and r.csp:find("default-src 'none'", 1, true), path)
      assert.equal("nosniff", r.nosniff, path)
    end
  end)

  it("removes the folder it made when closed", function()
    assert.truthy(served_dir:find("nnvis-view-", 1, true))
    assert.is_nil(io.open(served_dir .. "/graph.json"))
  end)

  it("leaves a screenshot", function()
    assert.is_true(H.is_png("build/view.png"))
  end)
end)
