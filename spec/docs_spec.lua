-- docs/API.md is generated from the doc comments and up to date; public functions have docs.
local nv = require "nnvis"

describe("docs/API.md", function()
  it("is what tools/gendocs.lua writes from the doc comments (run make docs)", function()
    local gen = dofile("tools/gendocs.lua")
    local want = gen.generate(".")
    local got = io.open("docs/API.md"):read("a")
    assert.equal(want, got)
  end)

  it("documents nv.capture, nv.gradcheck, Module:load and the layers", function()
    local md = io.open("docs/API.md"):read("a")
    for _, s in ipairs { "nv.capture(", "nv.gradcheck(", "Module:load(", "nv.nn.Conv2d(", "nv.data.fashion_mnist(",
                         "nv.cam.overlay(", "Tensor:matmul(", "nv.randn(" } do
      assert.truthy(md:find(s, 1, true), s)
    end
  end)

  it("every public name, C or Lua, has an entry in the documentation registry", function()
    local doc = require "nnvis.app.doc"
    local missing = {}
    for _, e in ipairs(doc.public()) do
      local en = doc.entry(e[1], e[2])
      if not en or not en.text or en.text:match("^%s*$") then missing[#missing + 1] = e[1] end
    end
    if #missing > 0 then
      error(("%d public names have no documentation entry: %s"):format(#missing, table.concat(missing, ", ")))
    end
  end)

  it("answers ? in the REPL and the kernel from the same entries, C functions and constructors too", function()
    local I = require "nnvis.app.introspect"
    local env = { nv = nv, x = nv.randn(2, 3), m = nv.nn.Linear(2, 2) }
    assert.matches("^nv%.randn%(", require("nnvis.app.doc").help("nv.randn", env))
    assert.matches("^Tensor:matmul%(", require("nnvis.app.doc").help("x:matmul", env))
    assert.matches("^nv%.nn%.Conv2d%(cin, cout, k, opts%)", require("nnvis.app.doc").help("nv.nn.Conv2d", env))
    assert.matches("^nv%.cam%.gradcam%(model, x", require("nnvis.app.doc").help("nv.cam.gradcam", env))
    assert.not_matches("built%-in function", require("nnvis.app.doc").help("nv.tensor", env))
  end)

  it("the README links only to files in the repository", function()
    local md = io.open("README.md"):read("a")
    for target in md:gmatch("%]%(([^)#]+)[^)]*%)") do
      if not target:find("^https?:") then
        assert.truthy(io.open(target), "README links to a missing file: " .. target)
      end
    end
    assert.is_nil(md:find("../shared", 1, true))
  end)
end)
