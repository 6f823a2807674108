--- nnvis.nn3d — the 3-d layers for video and volumes (N, C, D, H, W), on nnvis.ops3d:
-- nn.Conv3d, nn.ConvTranspose3d, nn.MaxPool3d, nn.AvgPool3d, nn.AdaptiveAvgPool3d, nn.BatchNorm3d, with
-- PyTorch's parameter names and initialization.  nnvis.nn registers them (install(nn)).
local ops3d = require "nnvis.tensor.ops3d"

return function(nn)
  local H = nn._helpers
  local class, Module, check_opts, check_int = nn.class, nn.Module, H.check_opts, H.check_int

  local function triple(fname, what, v, min)
    if type(v) == "number" then v = { v, v, v } end
    if type(v) ~= "table" or #v ~= 3 then error(string.format("%s: %s must be a number or 3 numbers", fname, what), 3) end
    for i = 1, 3 do check_int(fname, what, v[i], min) end
    return { v[1], v[2], v[3] }
  end
  local function str(v) return v[1] .. "x" .. v[2] .. "x" .. v[3] end

  -- a 3-d convolution's hyperparameters and parameters (PyTorch's initialization: uniform in
  -- +-1/sqrt(fan_in) of the weight's shape); transposed: weight (in, out/groups, k) and
  -- output_padding
  local function conv_init(self, name, cin, cout, k, opts, transposed)
    local keys = { "stride", "padding", "dilation", "groups", "bias", "weight_init", "bias_init" }
    if transposed then keys[#keys + 1] = "output_padding" end
    opts = check_opts(name, opts, keys)
    self.in_channels = check_int(name, "in_channels", cin, 1)
    self.out_channels = check_int(name, "out_channels", cout, 1)
    self.kernel_size = triple(name, "kernel_size", k, 1)
    self.stride = triple(name, "stride", opts.stride or 1, 1)
    self.padding = triple(name, "padding", opts.padding or 0, 0)
    if transposed then self.output_padding = triple(name, "output_padding", opts.output_padding or 0, 0) end
    self.dilation = triple(name, "dilation", opts.dilation or 1, 1)
    self.groups = check_int(name, "groups", opts.groups or 1, 1)
    if cin % self.groups ~= 0 or cout % self.groups ~= 0 then
      error(string.format("%s: groups %d must divide in_channels %d and out_channels %d", name, self.groups, cin, cout), 3)
    end
    local ks = self.kernel_size
    local shape = transposed and { cin, cout // self.groups, ks[1], ks[2], ks[3] } or { cout, cin // self.groups, ks[1], ks[2], ks[3] }
    local fan_in, fan_out = H.init.fans(shape)
    local bound = 1 / math.sqrt(fan_in)
    self:register_parameter("weight", H.make_param(opts.weight_init or H.init.uniform(-bound, bound), shape, fan_in, fan_out))
    if opts.bias ~= false then
      self:register_parameter("bias", H.make_param(opts.bias_init or H.init.uniform(-bound, bound), { cout }, fan_in, fan_out))
    else
      self:register_parameter("bias", nil)
    end
  end

  --- Conv3d(in, out, k, {stride = 1, padding = 0, dilation = 1, groups = 1, bias = true,
  --- weight_init, bias_init}) on (N,C,D,H,W); weight (out, in/groups, kd, kh, kw)
  local Conv3d = class("Conv3d", Module)
  nn.Conv3d = Conv3d
  function Conv3d:init(cin, cout, k, opts) conv_init(self, "Conv3d", cin, cout, k, opts) end
  function Conv3d:forward(x)
    return ops3d.conv3d(x, self.weight, self.bias, { stride = self.stride, padding = self.padding,
      dilation = self.dilation, groups = self.groups })
  end
  function Conv3d:config()
    return { in_channels = self.in_channels, out_channels = self.out_channels, kernel_size = self.kernel_size,
             stride = self.stride, padding = self.padding, dilation = self.dilation, groups = self.groups }
  end
  function Conv3d:repr()
    return string.format("Conv3d(%d -> %d, %s, stride %s, pad %s)", self.in_channels, self.out_channels,
      str(self.kernel_size), str(self.stride), str(self.padding))
  end

  --- ConvTranspose3d(in, out, k, {stride = 1, padding = 0, output_padding = 0, dilation = 1,
  --- groups = 1, bias = true, weight_init, bias_init}) on (N,C,D,H,W): the transposed
  --- convolution (decoders, upsampling); weight (in, out/groups, kd, kh, kw), PyTorch's names
  --- and initialization
  local ConvTranspose3d = class("ConvTranspose3d", Module)
  nn.ConvTranspose3d = ConvTranspose3d
  function ConvTranspose3d:init(cin, cout, k, opts) conv_init(self, "ConvTranspose3d", cin, cout, k, opts, true) end
  function ConvTranspose3d:forward(x)
    return ops3d.conv_transpose3d(x, self.weight, self.bias, { stride = self.stride, padding = self.padding,
      output_padding = self.output_padding, dilation = self.dilation, groups = self.groups })
  end
  function ConvTranspose3d:config()
    return { in_channels = self.in_channels, out_channels = self.out_channels, kernel_size = self.kernel_size,
             stride = self.stride, padding = self.padding, output_padding = self.output_padding,
             dilation = self.dilation, groups = self.groups }
  end
  function ConvTranspose3d:repr()
    return string.format("ConvTranspose3d(%d -> %d, %s, stride %s, pad %s)", self.in_channels, self.out_channels,
      str(self.kernel_size), str(self.stride), str(self.padding))
  end

  local function pool(name, f, extra)
    local P = class(name, Module)
    nn[name] = P
    function P:init(k, opts)
      opts = check_opts(name, opts, extra)
      self.kernel_size = triple(name, "kernel_size", k, 1)
      self.stride = triple(name, "stride", opts.stride or self.kernel_size, 1)
      self.padding = triple(name, "padding", opts.padding or 0, 0)
      self.count_include_pad = opts.count_include_pad
    end
    function P:forward(x)
      return f(x, self.kernel_size, { stride = self.stride, padding = self.padding,
                                      count_include_pad = self.count_include_pad })
    end
    function P:config() return { kernel_size = self.kernel_size, stride = self.stride, padding = self.padding } end
    function P:repr() return string.format("%s(%s, stride %s)", name, str(self.kernel_size), str(self.stride)) end
    return P
  end
  --- MaxPool3d(k, {stride = k, padding = 0}) on (N,C,D,H,W)
  pool("MaxPool3d", function(x, k, o) return ops3d.max_pool3d(x, k, { stride = o.stride, padding = o.padding }) end,
    { "stride", "padding" })
  --- AvgPool3d(k, {stride = k, padding = 0, count_include_pad = true}) on (N,C,D,H,W)
  pool("AvgPool3d", ops3d.avg_pool3d, { "stride", "padding", "count_include_pad" })

  --- AdaptiveAvgPool3d(size): output (N, C, d, h, w) whatever the input's D, H, W
  local AdaptiveAvgPool3d = class("AdaptiveAvgPool3d", Module)
  nn.AdaptiveAvgPool3d = AdaptiveAvgPool3d
  function AdaptiveAvgPool3d:init(size) self.output_size = triple("AdaptiveAvgPool3d", "output_size", size, 1) end
  function AdaptiveAvgPool3d:forward(x) return ops3d.adaptive_avg_pool3d(x, self.output_size) end
  function AdaptiveAvgPool3d:config() return { output_size = self.output_size } end

  --- BatchNorm3d(c, {eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true}) on
  --- (N,C,D,H,W)
  local BatchNorm3d = class("BatchNorm3d", nn._BatchNorm)
  nn.BatchNorm3d = BatchNorm3d
  BatchNorm3d.input_dims, BatchNorm3d.input_desc = { 4 }, "a 5-d (N,C,D,H,W)"
  function BatchNorm3d:forward(x)
    if x:dim() ~= 5 then
      error(string.format("BatchNorm3d: expected a 5-d (N,C,D,H,W) input, got (%s)", table.concat(x:shape(), ",")), 0)
    end
    local s = x:shape()
    return nn._BatchNorm.forward(self, x:reshape(s[1], s[2], s[3], s[4] * s[5])):reshape(s)
  end
end
