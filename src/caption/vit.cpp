#include "caption/vit.h"

#include <torch/torch.h>

#include "nn/functional.h"

namespace ls::caption {

VitAttentionImpl::VitAttentionImpl(int64_t dim, int64_t heads, bool qkv_bias) : heads_(heads) {
  qkv = register_module("qkv", nn::Linear(dim, 3 * dim, qkv_bias));
  proj = register_module("proj", nn::Linear(dim, dim));
}

torch::Tensor VitAttentionImpl::forward(const torch::Tensor& x) {
  // timm reshapes qkv to (B, N, 3, heads, D): the three thirds of the last dim are q, k, v, each
  // laid out head-major, which is the [B, N, heads*D] layout nn::attention splits.
  auto parts = qkv(x).chunk(3, -1);
  return proj(nn::attention(parts[0], parts[1], parts[2], heads_));
}

VitBlockImpl::VitBlockImpl(const TaggerConfig& c) {
  norm1 = register_module("norm1", nn::LayerNorm(c.embed_dim, 1e-6));
  attn = register_module("attn", VitAttention(c.embed_dim, c.num_heads, c.qkv_bias));
  norm2 = register_module("norm2", nn::LayerNorm(c.embed_dim, 1e-6));
  mlp = register_module("mlp", Mlp(c.embed_dim, static_cast<int64_t>(c.embed_dim * c.mlp_ratio), c.act_layer));
}

torch::Tensor VitBlockImpl::forward(const torch::Tensor& x) {
  auto h = x + attn(norm1(x));
  return h + mlp(norm2(h));
}

VitNet::VitNet(const TaggerConfig& config) : config_(config) {
  const auto& c = config_;
  int64_t grid = c.img_size / c.patch_size;
  // timm registers cls_token and pos_embed first; the order only matters for saved files.
  if (c.class_token) cls_token_ = learned(*this, "cls_token", {1, 1, c.embed_dim});
  pos_embed_ = learned(*this, "pos_embed", {1, grid * grid + c.num_prefix_tokens(), c.embed_dim});
  patch_embed_ = register_module("patch_embed", PatchEmbed(c.patch_size, c.embed_dim));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks_->push_back(VitBlock(c));
  if (c.uses_fc_norm())
    fc_norm_ = register_module("fc_norm", nn::LayerNorm(c.embed_dim, 1e-6));
  else
    norm_ = register_module("norm", nn::LayerNorm(c.embed_dim, 1e-6));
  head_ = register_module("head", nn::Linear(c.embed_dim, c.num_classes));
}

torch::Tensor VitNet::forward(const torch::Tensor& pixels) {
  auto x = patch_embed_(pixels);  // [B, N, C]
  if (cls_token_.defined()) x = torch::cat({cls_token_.expand({x.size(0), -1, -1}), x}, 1);
  x = x + pos_embed_;
  for (auto& block : *blocks_) x = block->as<VitBlock>()->forward(x);
  if (norm_) x = norm_(x);
  x = config_.global_pool == "token" ? x.select(1, 0) : x.slice(1, config_.num_prefix_tokens()).mean(1);
  if (fc_norm_) x = fc_norm_(x);
  return head_(x);  // [B, num_classes]
}

}  // namespace ls::caption
