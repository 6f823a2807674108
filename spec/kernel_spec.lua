-- nnvis.kernel, the Lua side of the Jupyter kernel, without Jupyter: its JSON, how a cell is
-- compiled (the last expression is the result), the mimebundles of values, completion and help.
-- spec/jupyter_spec.lua drives the whole kernel through Jupyter.
local nv = require "nnvis"
local K = require "nnvis.app.kernel"
_G.nv = nv   -- the kernel's cells see nv as a global (busted keeps this file's globals to itself)

local function run(code)
  local f = assert(K.compile(code, "=cell"))
  local packed
  local r = table.pack(f(function(...) packed = table.pack(...); return packed end))
  return packed, r
end

describe("nnvis.app.kernel", function()
  describe("json()", function()
    it("writes objects with sorted keys, arrays, escapes and null", function()
      assert.equal('{"a":[1,2.5,"x"],"b":{"c":true}}', K.json({ a = { 1, 2.5, "x" }, b = { c = true } }))
      assert.equal('"q\\"\\\\\\n\\t\\u0001"', K.json('q"\\\n\t\1'))
      assert.equal("[]", K.json(setmetatable({}, K.array_mt)))
      assert.equal("{}", K.json({}))
      assert.equal("null", K.json(0 / 0))
    end)
  end)

  describe("compile()", function()
    it("returns the values of the cell's last expression", function()
      local p = run("x_kernel_spec = 20\nx_kernel_spec + 1, 'two'")
      assert.same({ 21, "two", n = 2 }, { p[1], p[2], n = p.n })
    end)
    it("finds a last expression that spans lines, and skips trailing comments", function()
      local p = run("local t = {}\nnv.tensor {\n  1, 2,\n}:sum():item()\n-- done\n")
      assert.equal(3, p[1])
    end)
    it("runs statements as statements and leaves an explicit return alone", function()
      local p, r = run("y_kernel_spec = 1\nfor i = 1, 3 do y_kernel_spec = y_kernel_spec * 2 end")
      assert.is_nil(p)
      assert.equal(8, y_kernel_spec)
      p, r = run("return 5")
      assert.is_nil(p)
      assert.equal(5, r[1])
    end)
    it("makes a local at the start of a line global, so that the next cell sees it", function()
      run("local z_kernel_spec = 7\nlocal function zf_kernel_spec() return 1 end")
      assert.equal(7, z_kernel_spec)
      assert.equal(1, zf_kernel_spec())
    end)
    it("reports a syntax error with the cell's name and line", function()
      local f, err = K.compile("a = 1\nb = = 2", "=In[3]")
      assert.is_nil(f)
      assert.equal("In[3]:2: unexpected symbol near '='", err)
    end)
    it("keeps the cell's line in a traceback (the result is not a tail call)", function()
      local f = assert(K.compile("local function g() error('boom') end\ng()", "=In[4]"))
      local _, tb = xpcall(f, debug.traceback, table.pack)
      assert.truthy(tb:find("In[4]:2: in main chunk", 1, true), tb)
    end)
  end)

  describe("mimebundle()", function()
    it("gives figures and image tensors a PNG, summaries and layer statistics their HTML, and everything text", function()
      local d, meta = K.mimebundle(nv.zeros(3, 16, 16) + 0.5)
      assert.truthy(d["image/png"]:match("^iVBORw0KGgo"))   -- base64 of the PNG signature
      assert.equal(256, meta["image/png"].width)             -- enlarged as nv.show does
      assert.truthy(d["text/plain"]:find("nnvis.Tensor of size 3x16x16", 1, true))
      d = K.mimebundle(nv.summary(nv.models.fashion_cnn(), { 1, 1, 28, 28 }))
      assert.truthy(d["text/html"]:find("<table", 1, true))
      assert.truthy(d["text/plain"]:find("Total params", 1, true))
      local m = nv.models.fashion_cnn()
      d = K.mimebundle(require("nnvis.inspect.capture").stats(nv.capture(m, nv.rand(2, 1, 28, 28), {})))
      assert.truthy(d["text/html"]:find('<td>features.0</td><td>(2,16,28,28)</td>', 1, true), d["text/html"])
      assert.truthy(d["text/plain"]:find("features.0", 1, true))
      d = K.mimebundle(nv.randn(3, 4))
      assert.is_nil(d["image/png"])
      assert.same({ ["text/plain"] = "{ 1, 2, k = \"v\" }" }, (K.mimebundle({ 1, 2, k = "v" })))
    end)
  end)

  describe("complete() and help()", function()
    it("completes globals, nnvis modules not yet loaded, and methods", function()
      assert.truthy(#K.complete("nv.ca") >= 1)
      local set = {}
      for _, m in ipairs(K.complete("nv.ca")) do set[m] = true end
      assert.truthy(set["nv.cam"])
      _G.m_kernel_spec = nv.nn.Linear(2, 3)
      set = {}
      for _, m in ipairs(K.complete("m_kernel_spec:para")) do set[m] = true end
      assert.truthy(set["m_kernel_spec:parameters"])
      assert.same({}, K.complete("no_such_thing.x"))
    end)
    it("shows a function's doc comment, and nil for nil", function()
      local h = K.help("nv.cam.gradcam")
      assert.truthy(h:find("Grad-CAM (Selvaraju et al. 2017", 1, true), h)
      assert.truthy(K.help("nv.train.fit"):find("Trains a classifier", 1, true))
      assert.is_nil(K.help("nv.no_such_function"))
    end)
  end)
end)
