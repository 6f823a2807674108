--- nnvis.vit — vision transformers as torchvision writes them (Dosovitskiy et al. 2021), with
-- torchvision's parameter names, so a torchvision ViT's weights load with model:load:
--   conv_proj (patches), class_token, encoder.pos_embedding,
--   encoder.layers.encoder_layer_<i>.{ln_1, self_attention.{in_proj_weight, in_proj_bias,
--   out_proj}, ln_2, mlp.0, mlp.3}, encoder.ln, heads.head
-- and the layers they are made of: nn.LayerNorm and nn.MultiheadAttention (batch first, its
-- attention weights the output of its `softmax` module, which nv.cam.attention and
-- nv.cam.rollout read).  nnvis.nn installs the layers (layers(nn)), nnvis.models the builders
-- (models(nn, models, with_weights)).
local M = {}

function M.layers(nn)
  local core = require "nnvis.core"
  local F = require "nnvis.tensor.functional"
  local H = nn._helpers
  local class, Module, check_opts, check_int = nn.class, nn.Module, H.check_opts, H.check_int

  --- LayerNorm(normalized_shape, {eps = 1e-5, elementwise_affine = true}): over the last dim,
  --- (x - mean) / sqrt(var + eps) * weight + bias (the biased variance, as PyTorch)
  local LayerNorm = class("LayerNorm", Module)
  nn.LayerNorm = LayerNorm
  function LayerNorm:init(d, opts)
    opts = check_opts("LayerNorm", opts, { "eps", "elementwise_affine" })
    self.normalized_shape = check_int("LayerNorm", "normalized_shape", d, 1)
    self.eps = opts.eps or 1e-5
    if opts.elementwise_affine ~= false then
      self:register_parameter("weight", core.ones(d))
      self:register_parameter("bias", core.zeros(d))
    end
  end
  function LayerNorm:forward(x)
    if x:size(-1) ~= self.normalized_shape then
      error(string.format("LayerNorm: expected the last dim to be %d, input has %d (%s)", self.normalized_shape,
        x:size(-1), table.concat(x:shape(), ",")), 0)
    end
    local w = self.weight
    if not core.is_grad_enabled() or not (x.requires_grad or (w and w.requires_grad)) then
      return core.layer_norm(x, w, self.bias, self.eps)       -- inference: one fused pass
    end
    local c = x - x:mean(-1, true)
    local y = c / ((c * c):mean(-1, true) + self.eps):sqrt()
    if self.weight then y = y * self.weight + self.bias end
    return y
  end
  function LayerNorm:config() return { normalized_shape = self.normalized_shape, eps = self.eps } end

  --- MultiheadAttention(embed_dim, num_heads): self-attention of (N, T, E) tokens (batch first):
  --- q, k, v = x in_proj_weight^T + in_proj_bias, split in heads of E / heads, softmax(q k^T /
  --- sqrt(d)) v, then out_proj; the attention weights (N, heads, T, T) are its softmax's output
  local MHA = class("MultiheadAttention", Module)
  nn.MultiheadAttention = MHA
  function MHA:init(e, heads, init)
    self.embed_dim = check_int("MultiheadAttention", "embed_dim", e, 1)
    self.num_heads = check_int("MultiheadAttention", "num_heads", heads, 1)
    if e % heads ~= 0 then error(string.format("MultiheadAttention: %d heads do not divide embed_dim %d", heads, e), 2) end
    local bound = math.sqrt(6 / (e + 3 * e))                     -- xavier_uniform of (3E, E)
    -- init = false (weights to be loaded): zeros, one allocation, no random temporaries
    self:register_parameter("in_proj_weight", init == false and core.zeros(3 * e, e) or core.rand(3 * e, e) * (2 * bound) - bound)
    self:register_parameter("in_proj_bias", core.zeros(3 * e))
    self.out_proj = nn.Linear(e, e, init == false and { weight_init = false, bias_init = false } or nil)
    self.softmax = nn.Softmax(-1)
  end
  function MHA:forward(x)
    local n, t, e = x:size(1), x:size(2), x:size(3)
    local h = self.num_heads
    local d = e // h
    local qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)              -- (N,T,3E)
    local function heads(k) return qkv:narrow(3, k * e + 1, e):reshape(n, t, h, d):transpose(2, 3) end
    local q, k, v = heads(0), heads(1), heads(2)                                  -- (N,H,T,d)
    local a = self.softmax(core.matmul(q * (1 / math.sqrt(d)), k:transpose(3, 4)))  -- (N,H,T,T)
    local o = core.matmul(a, v):transpose(2, 3):reshape(n, t, e)
    return self.out_proj(o)
  end
  function MHA:config() return { embed_dim = self.embed_dim, num_heads = self.num_heads } end

  -- one encoder block: x + attention(ln_1(x)), then + mlp(ln_2(.))
  local Block = class("EncoderBlock", Module)
  function Block:init(heads, hidden, mlp, eps, init)
    local lin = init == false and { weight_init = false, bias_init = false } or nil
    self.ln_1 = LayerNorm(hidden, { eps = eps })
    self.self_attention = MHA(hidden, heads, init)
    self.ln_2 = LayerNorm(hidden, { eps = eps })
    self.mlp = nn.Sequential { nn.Linear(hidden, mlp, lin), nn.GELU(), nn.Dropout(0), nn.Linear(mlp, hidden, lin), nn.Dropout(0) }
  end
  function Block:forward(x)
    local y = x + self.self_attention(self.ln_1(x))
    return y + self.mlp(self.ln_2(y))
  end

  local Encoder = class("Encoder", Module)
  function Encoder:init(seq, layers, heads, hidden, mlp, eps, init)
    self:register_parameter("pos_embedding", init == false and core.zeros(1, seq, hidden) or core.randn(1, seq, hidden) * 0.02)
    self.layers = nn.Sequential {}
    for i = 0, layers - 1 do self.layers:add(Block(heads, hidden, mlp, eps, init), "encoder_layer_" .. i) end
    self.ln = LayerNorm(hidden, { eps = eps })
  end
  function Encoder:forward(x) return self.ln(self.layers(x + self.pos_embedding)) end

  --- VisionTransformer{image_size, patch_size, num_layers, num_heads, hidden_dim, mlp_dim,
  --- num_classes = 1000, init}: torchvision's ViT; input (N, 3, image_size, image_size);
  --- init = false leaves every parameter zero (for weights loaded next: no random draws)
  local ViT = class("VisionTransformer", Module)
  nn.VisionTransformer = ViT
  function ViT:init(cfg)
    cfg = check_opts("VisionTransformer", cfg, { "image_size", "patch_size", "num_layers", "num_heads", "hidden_dim",
                                                "mlp_dim", "num_classes", "eps", "init" })
    for _, k in ipairs { "image_size", "patch_size", "num_layers", "num_heads", "hidden_dim", "mlp_dim" } do
      check_int("VisionTransformer", k, cfg[k], 1)
    end
    if cfg.image_size % cfg.patch_size ~= 0 then error(("VisionTransformer: patch_size %d must divide image_size %d"):format(cfg.patch_size, cfg.image_size), 2) end
    self.image_size, self.patch_size, self.hidden_dim = cfg.image_size, cfg.patch_size, cfg.hidden_dim
    self.num_classes = cfg.num_classes or 1000
    local g = cfg.image_size // cfg.patch_size
    local none = cfg.init == false and { weight_init = false, bias_init = false } or {}
    self.conv_proj = nn.Conv2d(3, cfg.hidden_dim, cfg.patch_size, { stride = cfg.patch_size, weight_init = none.weight_init,
                                                                   bias_init = none.bias_init })
    self:register_parameter("class_token", core.zeros(1, 1, cfg.hidden_dim))
    self.encoder = Encoder(g * g + 1, cfg.num_layers, cfg.num_heads, cfg.hidden_dim, cfg.mlp_dim, cfg.eps or 1e-6, cfg.init)
    self.heads = nn.Sequential {}
    self.heads:add(nn.Linear(cfg.hidden_dim, self.num_classes, cfg.init == false and none or nil), "head")
  end
  function ViT:forward(x)
    if x:dim() ~= 4 or x:size(3) ~= self.image_size or x:size(4) ~= self.image_size then
      error(string.format("VisionTransformer: expected an input (N,3,%d,%d), got (%s)", self.image_size, self.image_size,
        table.concat(x:shape(), ",")), 0)
    end
    local n = x:size(1)
    local p = self.conv_proj(x)
    local t = p:reshape(n, self.hidden_dim, -1):transpose(2, 3)
    t = core.cat({ self.class_token:expand(n, 1, self.hidden_dim), t }, 2)
    return self.heads(self.encoder(t):select(2, 1))
  end
  function ViT:config() return { image_size = self.image_size, patch_size = self.patch_size, num_classes = self.num_classes } end

end

function M.models(nn, models, with_weights)
  local check_opts = nn._helpers.check_opts
  local ViT = nn.VisionTransformer
  local configs = {
    vit_b_16 = { patch_size = 16, num_layers = 12, num_heads = 12, hidden_dim = 768, mlp_dim = 3072 },
    vit_b_32 = { patch_size = 32, num_layers = 12, num_heads = 12, hidden_dim = 768, mlp_dim = 3072 },
    vit_l_16 = { patch_size = 16, num_layers = 24, num_heads = 16, hidden_dim = 1024, mlp_dim = 4096 },
    vit_l_32 = { patch_size = 32, num_layers = 24, num_heads = 16, hidden_dim = 1024, mlp_dim = 4096 },
  }
  for name, c in pairs(configs) do
    --- nv.models.vit_b_16, vit_b_32, vit_l_16, vit_l_32({num_classes = 1000, image_size = 224,
    --- weights = "IMAGENET1K_V1"}): torchvision's vision transformers
    models[name] = function(opts)
      return with_weights(name, opts, function(o)
        o = check_opts(name, o, { "num_classes", "image_size", "weights", "progress", "init" })
        if o.init ~= nil and o.init ~= false and o.init ~= "torchvision" and o.init ~= "default" then
          error(name .. ": opts.init must be \"torchvision\", \"default\" or false, got " .. tostring(o.init), 3)
        end
        local cfg = { image_size = o.image_size or 224, num_classes = o.num_classes, init = o.init == false and false or nil }
        for k, v in pairs(c) do cfg[k] = v end
        local m = ViT(cfg)
        m.name = name
        return m
      end)
    end
  end
end

return M
