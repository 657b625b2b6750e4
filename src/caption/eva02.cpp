#include "caption/eva02.h"

#include <cmath>

#include <torch/torch.h>

#include "core/error.h"

namespace ls::caption {

torch::Tensor eva_rope_table(int64_t grid, int64_t head_dim, std::array<int64_t, 2> ref_feat_shape) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  const int64_t bands_n = head_dim / 4;  // per axis; sin and cos of both axes fill head_dim
  // freq_bands(step=1): 1 / temperature^(i / n), computed in float32 as timm does
  auto bands = 1.0 / torch::pow(10000.0, torch::arange(bands_n, torch::kLong).to(torch::kFloat) / bands_n);
  auto t = torch::arange(grid, torch::kLong).to(torch::kFloat);
  // Positions on the grid the model was pretrained at (EVA's resize rule): x / size * ref.
  auto th = ref_feat_shape[0] > 0 ? t / static_cast<double>(grid) * static_cast<double>(ref_feat_shape[0]) : t;
  auto tw = ref_feat_shape[1] > 0 ? t / static_cast<double>(grid) * static_cast<double>(ref_feat_shape[1]) : t;
  auto mesh = torch::meshgrid({th, tw}, "ij");
  auto pos = torch::stack({mesh[0], mesh[1]}, -1).unsqueeze(-1) * bands.to(f32.dtype());  // [h, w, 2, n]
  auto layout = [&](const torch::Tensor& v) {
    // [h, w, 2, n] -> [h*w, 2n], each value twice: (f0, f0, f1, f1, ...) for interleaved pairs
    return v.flatten(-2).flatten(0, -2).repeat_interleave(2, -1);
  };
  return torch::cat({layout(pos.sin()), layout(pos.cos())}, -1);  // [N, 2 * head_dim]
}

namespace {
// Interleaved rotation: each pair (x0, x1) turns by its angle; rot(x) = (-x1, x0).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& rope) {
  auto sc = rope.chunk(2, -1);
  auto pairs = x.unflatten(-1, {-1, 2});
  auto rot = torch::stack({-pairs.select(-1, 1), pairs.select(-1, 0)}, -1).flatten(-2);
  return x * sc[1] + rot * sc[0];
}
}  // namespace

EvaAttentionImpl::EvaAttentionImpl(const TaggerConfig& c) : heads_(c.num_heads), prefix_(c.num_prefix_tokens()) {
  const int64_t dim = c.embed_dim;
  if (c.qkv_fused) {
    qkv = register_module("qkv", nn::Linear(dim, 3 * dim, false));
    if (c.qkv_bias) {
      q_bias = learned(*this, "q_bias", {dim});
      v_bias = learned(*this, "v_bias", {dim});
    }
  } else {
    q_proj = register_module("q_proj", nn::Linear(dim, dim, c.qkv_bias));
    k_proj = register_module("k_proj", nn::Linear(dim, dim, false));
    v_proj = register_module("v_proj", nn::Linear(dim, dim, c.qkv_bias));
  }
  proj = register_module("proj", nn::Linear(dim, dim));
}

torch::Tensor EvaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& rope) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2);
  torch::Tensor q, k, v;
  if (qkv) {
    auto bias = q_bias.defined() ? torch::cat({q_bias, torch::zeros_like(q_bias), v_bias}) : torch::Tensor();
    auto parts = torch::linear(x, qkv->weight, bias).chunk(3, -1);
    q = parts[0], k = parts[1], v = parts[2];
  } else {
    q = q_proj(x), k = k_proj(x), v = v_proj(x);
  }
  auto heads = [&](const torch::Tensor& t) { return t.view({B, N, heads_, -1}).transpose(1, 2); };  // [B, H, N, D]
  q = heads(q), k = heads(k), v = heads(v);
  if (rope.defined()) {
    // Prefix (class) tokens have no position: only the patch tokens rotate.
    auto r = rope.to(q.options());
    q = torch::cat({q.slice(2, 0, prefix_), apply_rope(q.slice(2, prefix_), r)}, 2);
    k = torch::cat({k.slice(2, 0, prefix_), apply_rope(k.slice(2, prefix_), r)}, 2);
  }
  auto out = at::scaled_dot_product_attention(q, k, v);  // scale 1/sqrt(D)
  return proj(out.transpose(1, 2).reshape({B, N, C}));
}

SwiGluImpl::SwiGluImpl(int64_t dim, int64_t hidden) {
  fc1_g = register_module("fc1_g", nn::Linear(dim, hidden));
  fc1_x = register_module("fc1_x", nn::Linear(dim, hidden));
  norm = register_module("norm", nn::LayerNorm(hidden, 1e-6));
  fc2 = register_module("fc2", nn::Linear(hidden, dim));
}

torch::Tensor SwiGluImpl::forward(const torch::Tensor& x) { return fc2(norm(torch::silu(fc1_g(x)) * fc1_x(x))); }

EvaBlockImpl::EvaBlockImpl(const TaggerConfig& c) {
  norm1 = register_module("norm1", nn::LayerNorm(c.embed_dim, 1e-6));
  attn = register_module("attn", EvaAttention(c));
  norm2 = register_module("norm2", nn::LayerNorm(c.embed_dim, 1e-6));
  const auto hidden = static_cast<int64_t>(static_cast<double>(c.embed_dim) * c.mlp_ratio);  // int() as timm
  if (c.swiglu_mlp)
    swiglu = register_module("mlp", SwiGlu(c.embed_dim, hidden));
  else
    mlp = register_module("mlp", Mlp(c.embed_dim, hidden, "gelu"));
}

torch::Tensor EvaBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& rope) {
  auto h = x + attn(norm1(x), rope);
  return h + (swiglu ? swiglu(norm2(h)) : mlp(norm2(h)));
}

Eva02Net::Eva02Net(const TaggerConfig& config) : config_(config) {
  const auto& c = config_;
  // timm builds these variants with other parameter names (GluMlp's packed fc1, Mlp with norm).
  LS_CHECK(c.swiglu_mlp == c.scale_mlp, c.architecture, ": swiglu_mlp and scale_mlp must be both on or both off");
  const int64_t grid = c.img_size / c.patch_size;
  if (c.class_token) cls_token_ = learned(*this, "cls_token", {1, 1, c.embed_dim});
  pos_embed_ = learned(*this, "pos_embed", {1, grid * grid + c.num_prefix_tokens(), c.embed_dim});
  patch_embed_ = register_module("patch_embed", PatchEmbed(c.patch_size, c.embed_dim));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks_->push_back(EvaBlock(c));
  if (c.uses_fc_norm())
    fc_norm_ = register_module("fc_norm", nn::LayerNorm(c.embed_dim, 1e-6));
  else
    norm_ = register_module("norm", nn::LayerNorm(c.embed_dim, 1e-6));
  head_ = register_module("head", nn::Linear(c.embed_dim, c.num_classes));
  if (c.use_rot_pos_emb) rope_ = eva_rope_table(grid, c.embed_dim / c.num_heads, c.ref_feat_shape);
}

torch::Tensor Eva02Net::forward(const torch::Tensor& pixels) {
  auto x = patch_embed_(pixels);  // [B, N, C]
  if (cls_token_.defined()) x = torch::cat({cls_token_.expand({x.size(0), -1, -1}), x}, 1);
  x = x + pos_embed_;
  for (auto& block : *blocks_) x = block->as<EvaBlock>()->forward(x, rope_);
  if (norm_) x = norm_(x);
  x = config_.global_pool == "token" ? x.select(1, 0) : x.slice(1, config_.num_prefix_tokens()).mean(1);
  if (fc_norm_) x = fc_norm_(x);
  return head_(x);
}

}  // namespace ls::caption
