-- nnvis.nn and nnvis.class: modules, containers, hooks, state dicts, layers and their defaults.
local nv = require "nnvis"
local H = require "helpers"
local class = require "nnvis.tensor.class"
local nn = nv.nn

local function names(iter_fn, m)
  local out = {}
  for name in iter_fn(m) do out[#out + 1] = name end
  return out
end

local function keys_of(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- a user-defined residual block written with only init and forward
local Residual = class("Residual", nn.Module)
function Residual:init(c)
  self.conv = nn.Conv2d(c, c, 3, { padding = 1 })
  self.bn = nn.BatchNorm2d(c)
  self.relu = nn.ReLU()
end
function Residual:forward(x) return self.relu(self.bn(self.conv(x)) + x) end

local function small_net()
  return nn.Sequential {
    nn.Conv2d(2, 4, 3, { padding = 1 }), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
    Residual(4), nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 3 * 3, 5),
  }
end

describe("nnvis.tensor.class", function()
  it("makes instances by calling the class, runs init and reaches the parent through super", function()
    local Animal = class("Animal")
    function Animal:init(name) self.name = name end
    function Animal:speak() return self.name .. " speaks" end
    function Animal.__tostring(a) return "Animal " .. a.name end
    local Dog = class("Dog", Animal)
    function Dog:init(name) Dog.super.init(self, name); self.dog = true end
    function Dog:speak() return Dog.super.speak(self) .. " woof" end
    local d = Dog("Rex")
    assert.equal("Rex speaks woof", d:speak())
    assert.is_true(d.dog)
    assert.equal("Animal Rex", tostring(d))          -- metamethods are inherited
    assert.is_true(class.isinstance(d, Animal))
    assert.is_true(class.isinstance(d, Dog))
    assert.is_false(class.isinstance(Animal("Cat"), Dog))
    assert.is_false(class.isinstance({}, Animal))
    assert.equal("Dog", class.name(d))
  end)

  it("passes metamethods defined later on a parent to subclasses that do not override them", function()
    local A = class("A")
    local B = class("B", A)
    local C = class("C", A)
    function C.__len() return 7 end
    function A.__len() return 3 end
    assert.equal(3, #B())
    assert.equal(7, #C())
  end)
end)

describe("nnvis.nn", function()
  before_each(function() nv.manual_seed(7) end)

  describe("Module", function()
    it("lets a user-defined module with init and forward register its children and parameters", function()
      local r = Residual(3)
      local x = nv.randn(2, 3, 5, 5)
      local y = r(x)
      assert.same({ 2, 3, 5, 5 }, y:shape())
      H.close(y, (r.bn(r.conv(x)) + x):relu(), 1e-6)
      assert.same({ "conv.weight", "conv.bias", "bn.weight", "bn.bias" }, names(r.named_parameters, r))
      assert.same({ "bn.running_mean", "bn.running_var", "bn.num_batches_tracked" }, names(r.named_buffers, r))
      assert.equal("Residual", r.kind)
      for _, p in ipairs(r:parameters()) do assert.is_true(p.requires_grad and p.is_leaf) end
    end)

    it("registers assigned leaf tensors that require grad as parameters, but not other tensors", function()
      local Scale = class("Scale", nn.Module)
      function Scale:init()
        self.gain = nv.ones(3):set_requires_grad(true)
        self.constant = nv.ones(3)
        self:register_buffer("count", nv.zeros(1))
      end
      function Scale:forward(x)
        self.last = x * self.gain          -- a cached activation is not a parameter
        return self.last
      end
      local s = Scale()
      s(nv.ones(2, 3))
      assert.same({ "gain" }, names(s.named_parameters, s))
      assert.same({ "count" }, names(s.named_buffers, s))
      assert.same({ "count", "gain" }, keys_of((s:state_dict())))
    end)

    it("lists named_parameters in definition order with dotted paths, own parameters first", function()
      local net = small_net()
      assert.same({ "0.weight", "0.bias", "1.weight", "1.bias", "4.conv.weight", "4.conv.bias",
                    "4.bn.weight", "4.bn.bias", "7.weight", "7.bias" }, names(net.named_parameters, net))
      assert.equal(10, #net:parameters())
      local r = net:get("4")
      assert.same({}, names(function(m) return m:named_parameters { recurse = false } end, r))
      assert.same({ "weight", "bias" }, names(function(m) return m:named_parameters { recurse = false } end, r.conv))
      assert.equal(4 * 2 * 9 + 4 + 4 + 4 + 4 * 4 * 9 + 4 + 4 + 4 + 5 * 36 + 5, net:num_parameters())
    end)

    it("counts a shared parameter or module once in parameters() and named_modules()", function()
      local lin = nn.Linear(3, 3)
      local net = nn.Sequential { lin, nn.ReLU(), lin }
      assert.equal(2, #net:parameters())
      assert.same({ "", "0", "1" }, names(net.named_modules, net))
      local a, b = nn.Linear(2, 2), nn.Linear(2, 2)
      b.weight = a.weight
      local pair = nn.Sequential { a, b }
      assert.same({ "0.weight", "0.bias", "1.bias" }, names(pair.named_parameters, pair))
    end)

    it("iterates named_modules from the root \"\" in pre-order and lists direct children", function()
      local net = small_net()
      assert.same({ "", "0", "1", "2", "3", "4", "4.conv", "4.bn", "4.relu", "5", "6", "7" },
        names(net.named_modules, net))
      assert.equal(8, #net:children())
      assert.equal(8, #net)
      local seen = {}
      for name, m in net:named_children() do seen[#seen + 1] = name .. "=" .. m.kind end
      assert.equal("4=Residual", seen[5])
    end)

    it("get() finds sub-modules and tensors by dotted path and names a missing path", function()
      local net = small_net()
      assert.equal("BatchNorm2d", net:get("4.bn").kind)
      assert.equal(net:get("4"), net:get(5))           -- a number is a 1-based position
      assert.equal(net:get("0"), net:get(1))
      assert.equal(net:get("0"), net[1])
      assert.equal(net:get("7"), net[#net])
      assert.is_nil(net[9])
      assert.has_error(function() net:get(9) end,
        "get: Sequential has 8 child modules, no position 9 (a number is a 1-based position; a string is a name)")
      assert.has_error(function() net:get(0) end)
      assert.has_error(function() net:get(1.5) end)
      assert.equal(net, net:get(""))
      assert.same({ 4 }, net:get("4.bn.running_mean"):shape())
      assert.has_error(function() net:get("4.bn2.weight") end,
        "get: Sequential has no '4.bn2.weight' ('4' has no 'bn2')")
      assert.has_error(function() net:get("9") end, "get: Sequential has no '9'")
      assert.has_error(function() net:get("4.forward") end,
        "get: Sequential has no '4.forward' ('4' has no 'forward')")
    end)

    it("train() and eval() set training on the whole tree", function()
      local net = small_net()
      assert.is_true(net:get("4.bn").training)
      assert.equal(net, net:eval())
      for _, m in net:named_modules() do assert.is_false(m.training) end
      net:train()
      for _, m in net:named_modules() do assert.is_true(m.training) end
      net:train(false)
      assert.is_false(net:get("6").training)
    end)

    it("zero_grad() clears the gradients of every parameter", function()
      local net = nn.Sequential { nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 1) }
      net(nv.randn(4, 3)):sum():backward()
      for _, p in ipairs(net:parameters()) do assert.is_not_nil(p.grad) end
      net:zero_grad()
      for _, p in ipairs(net:parameters()) do assert.is_nil(p.grad) end
    end)

    it("refuses a parameter name that would hide a method", function()
      local m = nn.Module()
      assert.has_error(function() m:register_parameter("forward", nv.zeros(1)) end,
        "register_parameter: 'forward' would hide the method Module.forward")
    end)

    it("reports a missing forward by the module's kind", function()
      local Empty = class("Empty", nn.Module)
      assert.has_error(function() Empty()(nv.zeros(1)) end, "Empty: the module has no forward; define Empty:forward(x)")
    end)
  end)

  describe("training and evaluation modes", function()
    it("BatchNorm normalizes with batch statistics and updates the running ones in training", function()
      local bn = nn.BatchNorm2d(3)
      local x = nv.randn(4, 3, 5, 5) * 3 + 2
      local y = bn(x)
      local per = y:permute(2, 1, 3, 4):reshape(3, -1)
      H.close(per:mean(2), nv.zeros(3), 1e-4)
      H.close(per:var(2, { unbiased = false }), nv.ones(3), 1e-3)
      local xm = x:permute(2, 1, 3, 4):reshape(3, -1)
      H.close(bn.running_mean, xm:mean(2) * 0.1, 1e-5)
      H.close(bn.running_var, nv.ones(3) * 0.9 + xm:var(2) * 0.1, 1e-4)
      assert.equal(1, bn.num_batches_tracked:item())
      bn(x)
      assert.equal(2, bn.num_batches_tracked:item())
    end)

    it("BatchNorm uses the running statistics in eval mode and leaves them alone", function()
      local bn = nn.BatchNorm2d(2)
      nv.no_grad(function()
        bn.running_mean:copy(nv.tensor { 1, -1 })
        bn.running_var:copy(nv.tensor { 4, 0.25 })
        bn.weight:copy(nv.tensor { 2, 1 })
        bn.bias:copy(nv.tensor { 0, 3 })
      end)
      bn:eval()
      local x = nv.randn(3, 2, 2, 2)
      local expect = (x - nv.tensor { 1, -1 }:view(1, 2, 1, 1)) / (nv.tensor { 4, 0.25 } + 1e-5):sqrt():view(1, 2, 1, 1)
        * nv.tensor { 2, 1 }:view(1, 2, 1, 1) + nv.tensor { 0, 3 }:view(1, 2, 1, 1)
      H.close(bn(x), expect, 1e-5)
      H.close(bn.running_mean, { 1, -1 })
      assert.equal(0, bn.num_batches_tracked:item())
      -- the same input in training mode gives a different, batch-normalized output
      bn:train()
      assert.is_true(H.maxdiff(bn(x), expect) > 0.1)
    end)

    it("BatchNorm1d accepts (N,C) and (N,C,L) and names a wrong input", function()
      local bn = nn.BatchNorm1d(3)
      assert.same({ 5, 3 }, bn(nv.randn(5, 3)):shape())
      assert.same({ 5, 3, 4 }, bn(nv.randn(5, 3, 4)):shape())
      assert.has_error(function() bn(nv.randn(5, 4)) end, "BatchNorm1d: expected 3 channels, input (5,4) has 4")
      assert.has_error(function() nn.BatchNorm2d(3)(nv.randn(5, 3)) end,
        "BatchNorm2d: expected a 4-d (N,C,H,W) input, got (5,3)")
    end)

    it("Dropout drops and rescales in training and is the identity in eval", function()
      local d = nn.Dropout(0.25)
      local x = nv.ones(4000)
      local y = d(x)
      local zeros = y:eq(0):sum():item()
      assert.is_true(math.abs(zeros / 4000 - 0.25) < 0.04)
      H.close(y:max(), nv.tensor(1 / 0.75), 1e-5)
      d:eval()
      H.close(d(x), x)
    end)
  end)

  describe("forward hooks", function()
    it("see the module, its input and its output", function()
      local net = small_net()
      local conv = net:get("0")
      local seen = {}
      conv:register_forward_hook(function(m, input, output)
        seen.m, seen.input, seen.output = m, input, output
      end)
      local x = nv.randn(1, 2, 6, 6)
      net(x)
      assert.equal(conv, seen.m)
      assert.equal(x, seen.input)
      H.close(seen.output, nv.conv2d(x, conv.weight, conv.bias, { padding = 1 }), 1e-6)
    end)

    it("replace the output when they return a value", function()
      local net = nn.Sequential { nn.Linear(3, 2), nn.ReLU() }
      net:get("0"):register_forward_hook(function(_, _, out) return out * 0 - 1 end)
      H.close(net(nv.randn(4, 3)), nv.zeros(4, 2))
    end)

    it("stop after remove(), and after a <close> handle goes out of scope", function()
      local relu = nn.ReLU()
      local calls = 0
      local h = relu:register_forward_hook(function() calls = calls + 1 end)
      relu(nv.ones(1))
      h:remove()
      h:remove()                             -- removing twice is harmless
      relu(nv.ones(1))
      assert.equal(1, calls)
      do
        local h2 <close> = relu:register_forward_hook(function() calls = calls + 10 end)
        relu(nv.ones(1))
      end
      relu(nv.ones(1))
      assert.equal(11, calls)
    end)

    it("pre-hooks may replace the input", function()
      local lin = nn.Linear(2, 2)
      lin:register_forward_pre_hook(function(_, x) return x * 0 end)
      H.close(lin(nv.randn(3, 2)), lin.bias:view(1, 2):expand(3, 2), 1e-6)
    end)
  end)

  describe("state_dict", function()
    it("uses PyTorch's keys, buffers included, num_batches_tracked as a 1-element tensor", function()
      local net = small_net()
      local sd, keys = net:state_dict()
      assert.same({ "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                    "1.num_batches_tracked", "4.conv.weight", "4.conv.bias", "4.bn.weight", "4.bn.bias",
                    "4.bn.running_mean", "4.bn.running_var", "4.bn.num_batches_tracked", "7.weight", "7.bias" }, keys)
      assert.same({ 1 }, sd["1.num_batches_tracked"]:shape())
      assert.is_false(sd["0.weight"].requires_grad)
    end)

    it("survives save and load into a fresh model: identical outputs", function()
      local a = small_net()
      a(nv.randn(8, 2, 6, 6))                -- moves the running statistics
      a:eval()
      local path = os.tmpname()
      assert.is_true(a:save(path, { note = "spec" }))
      nv.manual_seed(99)
      local b = small_net():eval()
      local x = nv.randn(2, 2, 6, 6)
      assert.is_true(H.maxdiff(a(x), b(x)) > 1e-3)
      local loaded, missing, unexpected = b:load(path)
      os.remove(path)
      assert.equal(b, loaded)
      assert.same({}, missing)
      assert.same({}, unexpected)
      H.close(b(x), a(x), 1e-6)
      H.close(b:get("1.running_var"), a:get("1.running_var"), 0)
      assert.is_true(b:get("0.weight").requires_grad)
    end)

    it("load raises, naming the file, for an unreadable file", function()
      assert.error_matches(function() small_net():load("/nonexistent/model.safetensors") end,
        "load: /nonexistent/model.safetensors: No such file")
    end)

    it("in strict mode names missing, unexpected and mismatched keys in one error", function()
      local net = nn.Sequential { nn.Linear(3, 2), nn.Linear(2, 1) }
      local sd = net:state_dict()
      sd["1.bias"] = nil
      sd["2.weight"] = nv.zeros(1)
      sd["0.weight"] = nv.zeros(2, 4)
      assert.has_error(function() net:load_state_dict(sd) end,
        "load_state_dict: cannot load into Sequential: missing keys: 1.bias; unexpected keys: 2.weight; " ..
        "shape mismatch: 0.weight is (2,3) in the model, (2,4) in the state dict")
    end)

    it("copies nothing when it raises", function()
      local net = nn.Sequential { nn.Linear(3, 2) }
      local before = net:get("0.bias"):clone()
      assert.has_error(function() net:load_state_dict { ["0.bias"] = nv.ones(2) } end)
      H.close(net:get("0.bias"), before, 0)
    end)

    it("in non-strict mode loads what matches and returns the missing and unexpected keys", function()
      local net = nn.Sequential { nn.Linear(3, 2), nn.Linear(2, 1) }
      local missing, unexpected = net:load_state_dict({ ["0.weight"] = nv.ones(2, 3), extra = nv.zeros(1) },
        { strict = false })
      assert.same({ "0.bias", "1.weight", "1.bias" }, missing)
      assert.same({ "extra" }, unexpected)
      H.close(net:get("0.weight"), nv.ones(2, 3))
    end)

    it("accepts num_batches_tracked as a 0-dimensional tensor, as PyTorch stores it", function()
      local bn = nn.BatchNorm2d(2)
      local sd = { weight = nv.ones(2) * 2, bias = nv.zeros(2), running_mean = nv.ones(2),
                   running_var = nv.ones(2) * 3, num_batches_tracked = nv.tensor(42) }
      bn:load_state_dict(sd)
      assert.equal(42, bn.num_batches_tracked:item())
      H.close(bn.running_var, { 3, 3 })
      assert.same({ 1 }, bn.num_batches_tracked:shape())
    end)
  end)

  describe("layers", function()
    it("print like Torch7", function()
      assert.equal("Conv2d(3 -> 64, 3x3, 1,1, 1,1)", tostring(nn.Conv2d(3, 64, 3, { padding = 1 })))
      assert.equal("Conv2d(3 -> 64, 3x3)", tostring(nn.Conv2d(3, 64, 3)))
      assert.equal("Conv2d(64 -> 128, 1x1, 2,2) without bias", tostring(nn.Conv2d(64, 128, 1, { stride = 2, bias = false })))
      assert.equal("Conv2d(4 -> 8, 3x5, 1,2, 1,2, dilation 2,2, groups 2)",
        tostring(nn.Conv2d(4, 8, { 3, 5 }, { stride = { 1, 2 }, padding = { 1, 2 }, dilation = 2, groups = 2 })))
      assert.equal("Linear(512 -> 10)", tostring(nn.Linear(512, 10)))
      assert.equal("ReLU", tostring(nn.ReLU()))
      assert.equal("MaxPool2d(2x2, 2,2)", tostring(nn.MaxPool2d(2)))
      assert.equal("MaxPool2d(3x3, 2,2, 1,1)", tostring(nn.MaxPool2d(3, { stride = 2, padding = 1 })))
      assert.equal("AvgPool2d(2x2, 1,1, ceil_mode)", tostring(nn.AvgPool2d(2, { stride = 1, ceil_mode = true })))
      assert.equal("BatchNorm2d(64)", tostring(nn.BatchNorm2d(64)))
      assert.equal("BatchNorm1d(8, eps=0.001, affine=false)", tostring(nn.BatchNorm1d(8, { eps = 1e-3, affine = false })))
      assert.equal("AdaptiveAvgPool2d(7x7)", tostring(nn.AdaptiveAvgPool2d(7)))
      assert.equal("Dropout(0.5)", tostring(nn.Dropout()))
      assert.equal("LeakyReLU(0.01)", tostring(nn.LeakyReLU()))
      assert.equal("Softmax(dim=2)", tostring(nn.Softmax(2)))
      assert.equal("Flatten(start_dim=2)", tostring(nn.Flatten()))
    end)

    it("print containers with their children's names, nested ones indented further", function()
      local net = nn.Sequential {
        nn.Conv2d(1, 8, 3, { padding = 1 }), nn.ReLU(),
        nn.Sequential { nn.Flatten(), nn.Linear(8, 2) },
      }
      assert.equal(table.concat({
        "Sequential {",
        "  (0): Conv2d(1 -> 8, 3x3, 1,1, 1,1)",
        "  (1): ReLU",
        "  (2): Sequential {",
        "    (0): Flatten(start_dim=2)",
        "    (1): Linear(8 -> 2)",
        "  }",
        "}" }, "\n"), tostring(net))
      assert.equal(table.concat({
        "Residual {",
        "  (conv): Conv2d(2 -> 2, 3x3, 1,1, 1,1)",
        "  (bn): BatchNorm2d(2)",
        "  (relu): ReLU",
        "}" }, "\n"), tostring(Residual(2)))
    end)

    it("report their hyperparameters with config()", function()
      assert.same({ in_channels = 3, out_channels = 8, kernel_size = { 3, 3 }, stride = { 2, 2 },
                    padding = { 1, 1 }, dilation = { 1, 1 }, groups = 1, bias = false },
        nn.Conv2d(3, 8, 3, { stride = 2, padding = 1, bias = false }):config())
      assert.same({ in_features = 4, out_features = 2, bias = true }, nn.Linear(4, 2):config())
      assert.same({ p = 0.3 }, nn.Dropout(0.3):config())
      assert.same({ num_features = 5, eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true },
        nn.BatchNorm2d(5):config())
    end)

    it("initialize Conv2d and Linear uniformly within 1/sqrt(fan_in), as PyTorch does", function()
      local conv = nn.Conv2d(16, 32, 3)                   -- fan_in = 144, bound = 1/12
      local b = 1 / 12
      local w = conv.weight
      assert.is_true(w:max():item() <= b and w:min():item() >= -b)
      assert.is_true(w:max():item() > 0.95 * b and w:min():item() < -0.95 * b)
      assert.is_true(math.abs(w:mean():item()) < 0.05 * b)
      -- a uniform on (-b, b) has variance b^2/3 and half its mass within b/2
      assert.is_true(math.abs(w:var():item() / (b * b / 3) - 1) < 0.05)
      assert.is_true(math.abs(w:abs():lt(b / 2):mean():item() - 0.5) < 0.03)
      assert.is_true(conv.bias:abs():max():item() <= b)
      local lin = nn.Linear(100, 300)
      assert.is_true(lin.weight:abs():max():item() <= 0.1 and lin.weight:abs():max():item() > 0.099)
      assert.is_true(lin.bias:abs():max():item() <= 0.1)
      local bn = nn.BatchNorm2d(3)
      H.close(bn.weight, nv.ones(3), 0)
      H.close(bn.bias, nv.zeros(3), 0)
      H.close(bn.running_var, nv.ones(3), 0)
    end)

    it("compute what the functional ops compute", function()
      local x = nv.randn(2, 3, 8, 8)
      local conv = nn.Conv2d(3, 4, 3, { stride = 2, padding = 1, groups = 1 })
      H.close(conv(x), nv.conv2d(x, conv.weight, conv.bias, { stride = 2, padding = 1 }), 1e-6)
      H.close(nn.MaxPool2d(3, { stride = 2, padding = 1 })(x), nv.max_pool2d(x, 3, { stride = 2, padding = 1 }), 0)
      H.close(nn.AvgPool2d(2)(x), nv.avg_pool2d(x, 2), 0)
      assert.same({ 2, 3, 1, 1 }, nn.AdaptiveAvgPool2d(1)(x):shape())
      H.close(nn.LeakyReLU(0.2)(x), nv.leaky_relu(x, 0.2), 0)
      H.close(nn.ELU()(x), nv.elu(x, 1), 0)
      H.close(nn.Softmax(2)(x):sum(2), nv.ones(2, 8, 8), 1e-5)
      H.close(nn.LogSoftmax(-1)(x), nv.log_softmax(x, 4), 0)
      for _, a in ipairs { "GELU", "Sigmoid", "Tanh", "ReLU" } do
        H.close(nn[a]()(x), nv[a:lower()](x), 0)
      end
      assert.equal(x, nn.Identity()(x))
      assert.same({ 2, 192 }, nn.Flatten()(x):shape())
      assert.same({ 2, 3, 64 }, nn.Flatten(3)(x):shape())
      assert.same({ 6, 8, 8 }, nn.Flatten(1, 2)(x):shape())
    end)

    it("Sequential names children \"0\", \"1\", ... or as given, and rejects non-modules", function()
      local seq = nn.Sequential { nn.ReLU() }
      seq:add(nn.Tanh()):add(nn.Sigmoid(), "squash")
      assert.same({ "", "0", "1", "squash" }, names(seq.named_modules, seq))
      assert.equal("Sigmoid", seq:get("squash").kind)
      assert.equal(3, #seq)
      assert.has_error(function() nn.Sequential { nn.ReLU(), 3 } end,
        "Sequential: element 2 is not a module (got number)")
      assert.has_error(function() seq:add(nn.ReLU(), "squash") end,
        "Sequential.add: a child named 'squash' exists already")
    end)

    it("check their hyperparameters", function()
      assert.has_error(function() nn.Conv2d(3, 4, 0) end,
        "Conv2d: kernel_size must be an integer >= 1 or a pair {h, w} of them")
      assert.has_error(function() nn.Conv2d(3, 4, 3, { groups = 2 }) end,
        "Conv2d: in_channels 3 and out_channels 4 must be divisible by groups 2")
      assert.has_error(function() nn.Linear(0, 3) end, "Linear: in_features must be an integer >= 1, got 0")
    end)
  end)

  describe("training", function()
    it("a tiny model overfits a tiny batch with plain SGD", function()
      local net = nn.Sequential { nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3) }
      local x = nv.randn(6, 4)
      local y = { 1, 2, 3, 1, 2, 3 }
      local first, loss
      for _ = 1, 300 do
        net:zero_grad()
        loss = nv.cross_entropy(net(x), y)
        first = first or loss:item()
        loss:backward()
        nv.no_grad(function()
          for _, p in ipairs(net:parameters()) do p:add_(p.grad, -0.5) end
        end)
      end
      assert.is_true(first > 0.8)
      assert.is_true(loss:item() < 0.02, "final loss " .. loss:item())
    end)

    it("gradients reach every parameter of a convolutional net with BatchNorm and a residual block", function()
      local net = small_net()
      nv.cross_entropy(net(nv.randn(4, 2, 6, 6)), { 1, 2, 3, 4 }):backward()
      for name, p in net:named_parameters() do
        assert.is_not_nil(p.grad, name)
        assert.is_true(p.grad:abs():sum():item() > 0, name)
      end
    end)
  end)

  describe("init", function()
    it("kaiming_normal gives std gain/sqrt(fan) and the in-place forms overwrite a tensor", function()
      local w = nn.init.kaiming_normal { mode = "fan_out", nonlinearity = "relu" } ({ 64, 32, 3, 3 }, 288, 576)
      assert.is_true(math.abs(w:std():item() / math.sqrt(2 / 576) - 1) < 0.03)
      local lin = nn.Linear(10, 10)
      nn.init.constant_(lin.bias, 0.5)
      H.close(lin.bias, nv.full({ 10 }, 0.5), 0)
      nn.init.normal_(lin.weight, 0, 0.01)
      assert.is_true(lin.weight:abs():max():item() < 0.06)
      assert.is_true(lin.weight.requires_grad)
    end)
  end)
end)
