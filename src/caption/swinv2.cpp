#include "caption/swinv2.h"

#include <cmath>
#include <regex>

#include <torch/torch.h>

namespace ls::caption {

namespace {

// [B, H, W, C] (H, W multiples of w) -> [B * H/w * W/w, w, w, C], windows row-major per image
torch::Tensor window_partition(const torch::Tensor& x, int64_t w) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  return x.view({B, H / w, w, W / w, w, C}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, w, w, C});
}

torch::Tensor window_reverse(const torch::Tensor& windows, int64_t w, int64_t H, int64_t W) {
  const int64_t C = windows.size(-1);
  return windows.view({-1, H / w, W / w, w, w, C}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, H, W, C});
}

}  // namespace

SwinAttentionImpl::SwinAttentionImpl(int64_t dim, int64_t heads, int64_t window, int64_t pretrained_window)
    : heads_(heads) {
  logit_scale = register_parameter("logit_scale", torch::full({heads, 1, 1}, std::log(10.0)));
  cpb_mlp = register_module("cpb_mlp", torch::nn::Sequential());
  cpb_mlp->push_back("0", nn::Linear(2, 512));
  cpb_mlp->push_back("1", torch::nn::ReLU());
  cpb_mlp->push_back("2", nn::Linear(512, heads, false));
  qkv = register_module("qkv", nn::Linear(dim, 3 * dim, false));
  q_bias = learned(*this, "q_bias", {dim});
  v_bias = learned(*this, "v_bias", {dim});
  proj = register_module("proj", nn::Linear(dim, dim));

  // Offsets -(w-1)..(w-1) per axis, scaled to [-8, 8] by the (pretraining) window, then
  // log-spaced: sign(x) log2(|x| + 1) / 3.
  auto r = torch::arange(-(window - 1), window, torch::kLong).to(torch::kFloat);
  auto mesh = torch::meshgrid({r, r}, "ij");
  auto table = torch::stack({mesh[0], mesh[1]}, -1).unsqueeze(0);  // [1, 2w-1, 2w-1, 2]
  const int64_t ref = pretrained_window > 0 ? pretrained_window : window;
  table = table / static_cast<double>(std::max<int64_t>(ref - 1, 1));
  table = table * 8;
  coords_table_ = torch::sign(table) * torch::log2(torch::abs(table) + 1.0) / std::log2(8.0);

  auto c = torch::arange(window, torch::kLong);
  auto cm = torch::meshgrid({c, c}, "ij");
  auto flat = torch::stack({cm[0].flatten(), cm[1].flatten()});               // [2, w*w]
  auto rel = (flat.unsqueeze(2) - flat.unsqueeze(1)).permute({1, 2, 0}) + (window - 1);  // [w*w, w*w, 2]
  position_index_ = rel.select(2, 0) * (2 * window - 1) + rel.select(2, 1);
}

torch::Tensor SwinAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  const int64_t Bw = x.size(0), N = x.size(1), C = x.size(2);
  auto bias = torch::cat({q_bias, torch::zeros_like(q_bias), v_bias});
  auto parts = torch::linear(x, qkv->weight, bias).view({Bw, N, 3, heads_, -1}).permute({2, 0, 3, 1, 4});
  auto q = parts[0], k = parts[1], v = parts[2];  // [Bw, H, N, D]
  // Scaled cosine attention.
  auto attn = torch::matmul(torch::nn::functional::normalize(q, torch::nn::functional::NormalizeFuncOptions().dim(-1)),
                            torch::nn::functional::normalize(k, torch::nn::functional::NormalizeFuncOptions().dim(-1))
                                .transpose(-2, -1));
  attn = attn * torch::clamp_max(logit_scale, std::log(100.0)).exp();
  auto table = cpb_mlp->forward(coords_table_.to(x.options())).view({-1, heads_});
  auto rel_bias = table.index_select(0, position_index_.to(x.device()).flatten()).view({N, N, heads_});
  attn = attn + 16 * torch::sigmoid(rel_bias.permute({2, 0, 1})).unsqueeze(0);  // [Bw, H, N, N]
  if (mask.defined()) {
    const int64_t nw = mask.size(0);
    attn = (attn.view({-1, nw, heads_, N, N}) + mask.to(attn.options()).unsqueeze(1).unsqueeze(0))
               .view({-1, heads_, N, N});
  }
  auto out = torch::matmul(torch::softmax(attn, -1), v);
  return proj(out.transpose(1, 2).reshape({Bw, N, C}));
}

SwinBlockImpl::SwinBlockImpl(int64_t dim, int64_t heads, int64_t resolution, int64_t window, bool shifted,
                             int64_t pretrained_window, double mlp_ratio, const std::string& act_layer) {
  // timm: a stage no larger than the window is one window, unshifted.
  window_ = std::min(resolution, window);
  shift_ = (!shifted || resolution <= window_) ? 0 : window / 2;
  attn = register_module("attn", SwinAttention(dim, heads, window_, pretrained_window));
  norm1 = register_module("norm1", nn::LayerNorm(dim, 1e-5));
  mlp = register_module("mlp", Mlp(dim, static_cast<int64_t>(static_cast<double>(dim) * mlp_ratio), act_layer));
  norm2 = register_module("norm2", nn::LayerNorm(dim, 1e-5));
  if (shift_ > 0) {
    // Regions of the rolled, window-padded grid: tokens attend only within their own region.
    const int64_t side = (resolution + window_ - 1) / window_ * window_;
    auto img = torch::zeros({1, side, side, 1});
    const int64_t bounds[4] = {0, side - window_, side - shift_, side};
    int64_t count = 0;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        img.slice(1, bounds[i], bounds[i + 1]).slice(2, bounds[j], bounds[j + 1]).fill_(static_cast<double>(count++));
    auto windows = window_partition(img, window_).view({-1, window_ * window_});
    auto diff = windows.unsqueeze(1) - windows.unsqueeze(2);
    mask_ = torch::where(diff != 0, torch::full_like(diff, -100.0), torch::zeros_like(diff));
  }
}

torch::Tensor SwinBlockImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  auto h = shift_ ? torch::roll(x, {-shift_, -shift_}, {1, 2}) : x;
  const int64_t pad_h = (window_ - H % window_) % window_, pad_w = (window_ - W % window_) % window_;
  if (pad_h || pad_w) h = torch::constant_pad_nd(h, {0, 0, 0, pad_w, 0, pad_h});
  const int64_t Hp = h.size(1), Wp = h.size(2);
  auto windows = window_partition(h, window_).view({-1, window_ * window_, C});
  auto out = attn(windows, mask_).view({-1, window_, window_, C});
  h = window_reverse(out, window_, Hp, Wp).slice(1, 0, H).slice(2, 0, W);
  if (shift_) h = torch::roll(h, {shift_, shift_}, {1, 2});
  auto y = x + norm1(h);  // post-norm
  return y + norm2(mlp(y.reshape({B, -1, C}))).view({B, H, W, C});
}

PatchMergingImpl::PatchMergingImpl(int64_t dim, int64_t out_dim) {
  reduction = register_module("reduction", nn::Linear(4 * dim, out_dim, false));
  norm = register_module("norm", nn::LayerNorm(out_dim, 1e-5));
}

torch::Tensor PatchMergingImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(3);
  auto h = torch::constant_pad_nd(x, {0, 0, 0, x.size(2) % 2, 0, x.size(1) % 2});
  const int64_t H = h.size(1), W = h.size(2);
  // timm's order of the 4C features: (column offset, row offset, channel).
  h = h.reshape({B, H / 2, 2, W / 2, 2, C}).permute({0, 1, 3, 4, 2, 5}).flatten(3);
  return norm(reduction(h));
}

SwinV2Net::SwinV2Net(const TaggerConfig& config) : config_(config) {
  const auto& c = config_;
  patch_embed_ = register_module("patch_embed", PatchEmbed(c.patch_size, c.embed_dim));
  patch_norm_ = patch_embed_->register_module("norm", nn::LayerNorm(c.embed_dim, 1e-5));
  layers_ = register_module("layers", torch::nn::ModuleList());
  int64_t resolution = c.img_size / c.patch_size;
  int64_t dim = c.embed_dim;
  for (size_t i = 0; i < c.depths.size(); ++i) {
    auto stage = std::make_shared<torch::nn::Module>();
    int64_t out_dim = c.embed_dim << i;
    if (i > 0) {
      stage->register_module("downsample", PatchMerging(dim, out_dim));
      resolution = (resolution + 1) / 2;
    }
    auto blocks = stage->register_module("blocks", torch::nn::ModuleList());
    for (int64_t j = 0; j < c.depths[i]; ++j)
      blocks->push_back(SwinBlock(out_dim, c.stage_heads[i], resolution, c.window_size, j % 2 == 1,
                                  c.pretrained_window_sizes[i], c.mlp_ratio, c.act_layer));
    layers_->push_back(stage);
    dim = out_dim;
  }
  norm_ = register_module("norm", nn::LayerNorm(dim, 1e-5));
  auto head = register_module("head", std::make_shared<torch::nn::Module>());
  head_fc_ = head->register_module("fc", nn::Linear(dim, c.num_classes));
}

torch::Tensor SwinV2Net::forward(const torch::Tensor& pixels) {
  const int64_t side = pixels.size(2) / config_.patch_size;
  auto x = patch_norm_(patch_embed_(pixels)).view({pixels.size(0), side, side, -1});  // [B, H, W, C]
  for (auto& stage : *layers_) {
    auto children = stage->named_children();
    if (auto* down = children.find("downsample")) x = (*down)->as<PatchMerging>()->forward(x);
    for (auto& block : *(*children.find("blocks"))->as<torch::nn::ModuleList>()) x = block->as<SwinBlock>()->forward(x);
  }
  x = norm_(x);
  return head_fc_(x.mean({1, 2}));
}

std::string SwinV2Net::legacy_key(const std::string& key) {
  static const std::regex downsample(R"(^layers\.(\d+)\.downsample\.)");
  std::smatch m;
  if (std::regex_search(key, m, downsample))
    return "layers." + std::to_string(std::stoi(m[1]) + 1) + ".downsample." + m.suffix().str();
  if (key.rfind("head.", 0) == 0 && key.rfind("head.fc.", 0) != 0) return "head.fc." + key.substr(5);
  return key;
}

}  // namespace ls::caption
