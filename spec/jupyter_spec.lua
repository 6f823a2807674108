-- The Jupyter kernel `nnvis` as a person would use it: `make jupyter` installs its kernelspec
-- into a temporary JUPYTER_DATA_DIR, nbclient executes examples/tour.ipynb on it, and
-- jupyter_client talks to a kernel directly (interrupt, completion, inspection).  The Python
-- side is spec/jupyter_check.py on Debian's /usr/bin/python3 (python3-ipykernel,
-- python3-nbclient, python3-nbformat, python3-jupyter-client: `make deps` installs them);
-- pending when they are missing and run by hand, a failure under `make test` (H.missing).
local PY = "/usr/bin/python3"

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

local have = sh(PY .. " -c 'import ipykernel, nbclient, nbformat, jupyter_client' >/dev/null 2>&1")

-- the Python processes run without the sanitizer runtimes of `make test SANITIZE=1`; the Lua
-- child gets them back through NNVIS_KERNEL_LD_PRELOAD (jupyter/nnvis_kernel/kernel.py)
local function env_for(datadir)
  local pre = os.getenv("LD_PRELOAD") or ""
  return string.format("env -u LD_PRELOAD NNVIS_KERNEL_LD_PRELOAD='%s' JUPYTER_DATA_DIR='%s' PYDEVD_DISABLE_FILE_VALIDATION=1 ",
    pre, datadir)
end

local function checks(out)
  local r = {}
  for status, name, detail in out:gmatch("(%a+) (%S+) ?([^\n]*)") do
    if status == "ok" or status == "fail" then r[name] = { ok = status == "ok", detail = detail } end
  end
  return r
end

describe("the Jupyter kernel nnvis", function()
  if not have then
    require("helpers").missing("skipped: Debian's python3-ipykernel, python3-nbclient, python3-nbformat and python3-jupyter-client "
      .. "are not installed for " .. PY .. " (make deps installs them)")
    return
  end

  local datadir, nb_out, nb, client, install_out
  lazy_setup(function()
    datadir = os.tmpname()
    os.remove(datadir)
    assert(os.execute("mkdir -p '" .. datadir .. "'"))
    -- under `make test SANITIZE=1` the kernel loads build-asan/, as the rest of the suite does
    local san = os.getenv("NNVIS_BUILD") == "build-asan" and " SANITIZE=1" or ""
    local ok
    ok, install_out = sh(string.format("make -s --no-print-directory jupyter JUPYTER_DATA_DIR='%s'%s", datadir, san))
    assert(ok, install_out)
    nb_out = datadir .. "/tour.ipynb"
    local _, o1 = sh(env_for(datadir) .. PY .. " spec/jupyter_check.py notebook examples/tour.ipynb '" .. nb_out .. "'")
    nb = checks(o1)
    nb._raw = o1
    local _, o2 = sh(env_for(datadir) .. PY .. " spec/jupyter_check.py client")
    client = checks(o2)
    client._raw = o2
  end)

  lazy_teardown(function()
    if datadir then os.execute("rm -rf '" .. datadir .. "'") end
  end)

  local function check(r, name)
    local c = r[name]
    assert(c, name .. " was not checked:\n" .. r._raw)
    assert(c.ok, name .. ": " .. c.detail)
  end

  describe("make jupyter", function()
    it("installs the kernelspec nnvis in JUPYTER_DATA_DIR, on Debian's python3 with this checkout's lua/ and build/", function()
      local f = assert(io.open(datadir .. "/kernels/nnvis/kernel.json"))
      local spec = f:read("a")
      f:close()
      assert.truthy(spec:find('"display_name": "Lua 5.4 (nnvis)"', 1, true))
      assert.truthy(spec:find('"/usr/bin/python3", "-Xfrozen_modules=off", "-m", "nnvis_kernel"', 1, true))
      local root = io.popen("pwd"):read("l")
      assert.truthy(spec:find('"PYTHONPATH": "' .. root .. '/jupyter"', 1, true))
      assert.truthy(spec:find(root .. "/lua/?.lua", 1, true))
      local ok, list = sh("env -u LD_PRELOAD JUPYTER_DATA_DIR='" .. datadir .. "' " .. PY ..
        " -c 'import jupyter_client.kernelspec as k; print(k.KernelSpecManager().get_kernel_spec(\"nnvis\").display_name)'")
      assert(ok, list)
      assert.equal("Lua 5.4 (nnvis)\n", list)
      -- the kernel's logo, as Jupyter's launcher shows it
      local ok2, res = sh("env -u LD_PRELOAD JUPYTER_DATA_DIR='" .. datadir .. "' " .. PY ..
        " -c 'import jupyter_client.kernelspec as k; import os; print(sorted(os.listdir(k.KernelSpecManager().get_kernel_spec(\"nnvis\").resource_dir)))'")
      assert(ok2, res)
      assert.truthy(res:find("logo-64x64", 1, true), res)
      assert.truthy(res:find("logo-32x32", 1, true), res)
    end)
  end)

  describe("examples/tour.ipynb run by nbclient", function()
    it("is committed without outputs and runs to the end", function()
      check(nb, "committed-without-outputs")
      check(nb, "executed")
    end)
    it("shows figures and image tensors as image/png (PNG files of the size their metadata says)", function()
      check(nb, "png")
    end)
    it("shows the summary and the layer statistics as HTML tables, their text beside them", function()
      check(nb, "summary-html")
      check(nb, "stats-html")
    end)
    it("streams what print writes", function() check(nb, "print") end)
    it("converted by nbconvert to HTML, keeps its interactive figures, which answer a hover in Chromium", function()
      check(nb, "nbconvert-html")
      local chromium = "/usr/bin/chromium"
      if not io.open(chromium) then require("helpers").missing("Debian's chromium is not installed") return end
      local page = io.open(datadir .. "/tour.html"):read("a")
      local probe = [[<script>window.addEventListener('load',function(){setTimeout(function(){
        var root=document.querySelector('.nnvis-interactive');if(!root||!root.nnvisPoints)return;
        var svg=root.querySelector('svg'),pt=root.nnvisPoints[0],r=svg.getBoundingClientRect(),vb=svg.viewBox.baseVal;
        svg.dispatchEvent(new MouseEvent('mousemove',{clientX:r.left+(pt[0]-vb.x)/vb.width*r.width,
          clientY:r.top+(pt[1]-vb.y)/vb.height*r.height,bubbles:true}));
        document.body.setAttribute('data-hover-seen',root.getAttribute('data-hover')||'none');
        document.body.setAttribute('data-want',pt[2]);},100);});</script>]]
      local f = assert(io.open(datadir .. "/probe.html", "w"))
      f:write((page:gsub("</body>", function() return probe .. "</body>" end)))
      f:close()
      local p = io.popen("env -u LD_PRELOAD -u ASAN_OPTIONS -u LSAN_OPTIONS -u UBSAN_OPTIONS timeout 60 " .. chromium ..
        " --headless=new --no-sandbox --disable-gpu --disable-background-networking --user-data-dir=" .. datadir ..
        "/chromium --virtual-time-budget=5000 --dump-dom file://" .. datadir .. "/probe.html 2>/dev/null")
      local dom = p:read("a")
      p:close()
      local want = dom:match('data%-want="([^"]*)"')
      assert.truthy(want, "the probe ran on an interactive figure")
      assert.equal(want, dom:match('data%-hover%-seen="([^"]*)"'))
    end)
    it("shows a live fit as one display of its curves, updated in place each epoch", function() check(nb, "live-fit") end)
    it("reports an error with its name and message, and the kernel runs the next cell with its variables",
      function()
        check(nb, "error")
        check(nb, "survived")
      end)
  end)

  describe("a kernel driven by jupyter_client", function()
    it("stops `while true do end` on an interrupt with the error interrupted, variables kept", function()
      check(client, "interrupt")
      check(client, "after-interrupt")
    end)
    it("sends what print writes at once, not when the cell ends", function() check(client, "stream-live") end)
    it("delivers all of 20,000 prints in order, joined into few messages", function() check(client, "many-prints") end)
    it("completes nv.ca to nv.cam and fields of modules", function()
      check(client, "complete")
      check(client, "complete-field")
    end)
    it("inspects nv.cam.gradcam with its doc comment", function() check(client, "inspect") end)
    it("completes a tensor's methods, hides private fields, keeps the last result in _, shows ??f's source",
      function()
        check(client, "complete-tensor")
        check(client, "complete-private")
        check(client, "last-result")
        check(client, "source")
      end)
    it("tells a console that an unfinished block needs more lines", function() check(client, "is-complete") end)
    it("takes its Lua process with it when the kernel is killed in the middle of a cell", function()
      check(client, "no-orphan")
    end)
  end)
end)
