// SGM's UNet building blocks (generative-models openaimodel.py ResBlock/Downsample/Upsample,
// attention.py SpatialTransformer/BasicTransformerBlock/CrossAttention/FeedForward/GEGLU).
// Every block computes in the dtype of its input; only ResBlock norms upcast (SGM's GroupNorm32).
#include "models/unet_blocks.h"

#include "nn/checkpointing.h"

#include <torch/torch.h>

#include "nn/functional.h"

namespace ls::models {

namespace {
constexpr double kResNormEps = 1e-5;          // GroupNorm32 = torch GroupNorm default eps
constexpr double kTransformerNormEps = 1e-6;  // attention.py Normalize()

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;
}  // namespace

std::shared_ptr<torch::nn::Module> add_sequential(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>("Sequential"));
}

// ---------------------------------------------------------------------------------------------
ResBlockImpl::ResBlockImpl(int64_t channels, int64_t emb_channels, int64_t out_channels) {
  auto in_layers = add_sequential(*this, "in_layers");
  in_norm_ = in_layers->register_module("0", nn::GroupNorm(kUnetNormGroups, channels, kResNormEps, true));
  in_conv_ = in_layers->register_module("2", nn::Conv2d(channels, out_channels, 3, 1, 1));
  auto emb_layers = add_sequential(*this, "emb_layers");
  emb_proj_ = emb_layers->register_module("1", nn::Linear(emb_channels, out_channels));
  auto out_layers = add_sequential(*this, "out_layers");
  out_norm_ = out_layers->register_module("0", nn::GroupNorm(kUnetNormGroups, out_channels, kResNormEps, true));
  out_conv_ = out_layers->register_module("3", nn::Conv2d(out_channels, out_channels, 3, 1, 1));
  if (out_channels != channels) {
    skip_ = register_module("skip_connection", nn::Conv2d(channels, out_channels, 1));
  }
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& emb) {
  if (!gradient_checkpointing || !torch::GradMode::is_enabled()) return body(x, emb);
  return nn::checkpoint([this](const std::vector<torch::Tensor>& in) { return body(in[0], in[1]); }, {x, emb},
                        nn::has_trainable_parameters(*this));
}

torch::Tensor ResBlockImpl::body(const torch::Tensor& x, const torch::Tensor& emb) {
  auto h = in_conv_(torch::silu(in_norm_(x)));  // [B, out, H, W]
  auto e = emb_proj_(torch::silu(emb)).to(h.scalar_type());     // [B, out]
  h = h + e.unsqueeze(-1).unsqueeze(-1);
  h = out_conv_(torch::silu(out_norm_(h)));       // dropout p=0: identity
  return (skip_ ? skip_(x) : x) + h;
}

// ---------------------------------------------------------------------------------------------
DownsampleImpl::DownsampleImpl(int64_t channels, int64_t out_channels) {
  op_ = register_module("op", nn::Conv2d(channels, out_channels, 3, 2, 1));
}

torch::Tensor DownsampleImpl::forward(const torch::Tensor& x) { return op_(x); }

UpsampleImpl::UpsampleImpl(int64_t channels, int64_t out_channels) {
  conv_ = register_module("conv", nn::Conv2d(channels, out_channels, 3, 1, 1));
}

torch::Tensor UpsampleImpl::forward(const torch::Tensor& x) {
  std::vector<int64_t> size{x.size(2) * 2, x.size(3) * 2};
  // CUDA's nearest upsampling lacks bf16 before torch 2.1; copying values is exact in float32.
  if (x.scalar_type() == torch::kBFloat16) {
    return conv_(torch::upsample_nearest2d(x.to(torch::kFloat), size).to(x.scalar_type()));
  }
  return conv_(torch::upsample_nearest2d(x, size));  // [B, C, 2H, 2W]
}

// ---------------------------------------------------------------------------------------------
CrossAttentionImpl::CrossAttentionImpl(int64_t query_dim, int64_t context_dim, int64_t heads,
                                       int64_t dim_head)
    : heads_(heads) {
  int64_t inner = heads * dim_head;
  to_q_ = register_module("to_q", nn::Linear(query_dim, inner, false));
  to_k_ = register_module("to_k", nn::Linear(context_dim, inner, false));
  to_v_ = register_module("to_v", nn::Linear(context_dim, inner, false));
  to_out_ = add_sequential(*this, "to_out")->register_module("0", nn::Linear(inner, query_dim));
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  const auto& ctx = context.defined() ? context : x;
  auto q = to_q_(x);                                  // [B, N, H*D]
  auto k = to_k_(ctx);                                // [B, M, H*D]
  auto v = to_v_(ctx);                                // [B, M, H*D]
  return to_out_(nn::attention(q, k, v, heads_));     // [B, N, query_dim]
}

GegluImpl::GegluImpl(int64_t dim_in, int64_t dim_out) {
  proj_ = register_module("proj", nn::Linear(dim_in, dim_out * 2));
}

torch::Tensor GegluImpl::forward(const torch::Tensor& x) {
  auto parts = proj_(x).chunk(2, -1);  // value, gate: [..., dim_out] each
  return parts[0] * torch::gelu(parts[1]);
}

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult) {
  auto net = add_sequential(*this, "net");
  in_ = net->register_module("0", Geglu(dim, dim * mult));
  out_ = net->register_module("2", nn::Linear(dim * mult, dim));
}

torch::Tensor FeedForwardImpl::forward(const torch::Tensor& x) { return out_(in_(x)); }

// ---------------------------------------------------------------------------------------------
BasicTransformerBlockImpl::BasicTransformerBlockImpl(int64_t dim, int64_t heads, int64_t dim_head,
                                                     int64_t context_dim) {
  // Registration order is SGM's (attn1, ff, attn2, norms), hence the checkpoint's key order.
  attn1_ = register_module("attn1", CrossAttention(dim, dim, heads, dim_head));
  ff_ = register_module("ff", FeedForward(dim));
  attn2_ = register_module("attn2", CrossAttention(dim, context_dim, heads, dim_head));
  norm1_ = register_module("norm1", nn::LayerNorm(dim));
  norm2_ = register_module("norm2", nn::LayerNorm(dim));
  norm3_ = register_module("norm3", nn::LayerNorm(dim));
}

torch::Tensor BasicTransformerBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  if (!gradient_checkpointing || !torch::GradMode::is_enabled()) return body(x, context);
  return nn::checkpoint([this](const std::vector<torch::Tensor>& in) { return body(in[0], in[1]); }, {x, context},
                        nn::has_trainable_parameters(*this));
}

torch::Tensor BasicTransformerBlockImpl::body(const torch::Tensor& x, const torch::Tensor& context) {
  auto h = attn1_(norm1_(x)) + x;         // [B, N, dim]
  h = attn2_(norm2_(h), context) + h;
  return ff_(norm3_(h)) + h;
}

SpatialTransformerImpl::SpatialTransformerImpl(int64_t channels, int64_t heads, int64_t dim_head,
                                               int64_t depth, int64_t context_dim, bool use_linear) {
  int64_t inner = heads * dim_head;
  norm_ = register_module("norm", nn::GroupNorm(kUnetNormGroups, channels, kTransformerNormEps, false));
  if (use_linear) {
    proj_in_linear_ = register_module("proj_in", nn::Linear(channels, inner));
  } else {
    proj_in_conv_ = register_module("proj_in", nn::Conv2d(channels, inner, 1));
  }
  auto list = add_sequential(*this, "transformer_blocks");
  for (int64_t i = 0; i < depth; ++i) {
    blocks_.push_back(list->register_module(std::to_string(i),
                                            BasicTransformerBlock(inner, heads, dim_head, context_dim)));
  }
  if (use_linear) {
    proj_out_linear_ = register_module("proj_out", nn::Linear(inner, channels));
  } else {
    proj_out_conv_ = register_module("proj_out", nn::Conv2d(inner, channels, 1));
  }
}

torch::Tensor SpatialTransformerImpl::forward(const torch::Tensor& x, const torch::Tensor& context) {
  int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  auto t = norm_(x);                                    // [B, C, H, W]
  if (proj_in_conv_) t = proj_in_conv_(t);              // [B, inner, H, W]
  t = t.flatten(2).transpose(1, 2).contiguous();        // "b c h w -> b (h w) c"
  if (proj_in_linear_) t = proj_in_linear_(t);          // [B, HW, inner]
  for (auto& block : blocks_) t = block(t, context);
  if (proj_out_linear_) t = proj_out_linear_(t);        // [B, HW, C]
  t = t.transpose(1, 2).reshape({b, -1, h, w});         // "b (h w) c -> b c h w"
  if (proj_out_conv_) t = proj_out_conv_(t);
  return t + x;
}

// ---------------------------------------------------------------------------------------------
torch::Tensor TimestepSequentialImpl::forward(torch::Tensor x, const torch::Tensor& emb,
                                              const torch::Tensor& context) {
  for (auto& layer : layers_) {
    x = std::visit(Overloaded{
                       [&](ResBlock& m) { return m(x, emb); },
                       [&](SpatialTransformer& m) { return m(x, context); },
                       [&](nn::Conv2d& m) { return m(x); },
                       [&](Downsample& m) { return m(x); },
                       [&](Upsample& m) { return m(x); },
                   },
                   layer);
  }
  return x;
}

}  // namespace ls::models
