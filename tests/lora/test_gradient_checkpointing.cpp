// Gradient checkpointing on the tiny SDXL-shaped model with LoRA (UNet and both text encoders):
// LoRA gradients equal the non-checkpointed ones (<= 1e-6 relative), base weights get none.
#include <gtest/gtest.h>

#include "core/error.h"
#include "lora/network.h"
#include "models/sdxl_conditioner.h"
#include "models/sdxl_model.h"
#include "support/support.h"

namespace ls {
namespace {

// LoRA up weights start at zero (kohya); give them values so every gradient is non-trivial.
void randomize_up(lora::LoraNetwork& net) {
  torch::NoGradGuard ng;
  for (auto& p : net->named_parameters())
    if (p.key().find("lora_up") != std::string::npos) p.value().normal_(0, 0.05);
}

std::vector<std::pair<std::string, torch::Tensor>> lora_grads(lora::LoraNetwork& net) {
  std::vector<std::pair<std::string, torch::Tensor>> g;
  for (auto& p : net->named_parameters())
    if (p.value().requires_grad())
      g.emplace_back(p.key(), p.value().grad().defined() ? p.value().grad().clone() : torch::zeros_like(p.value()));
  return g;
}

// fp64, so that the comparison sees the recomputation and not fp32 summation order (in fp32 the
// worst tensor differs by ~3e-6 because gradients reach shared tensors in another order).
// Level 0 of the tiny UNet has 32 channels in 32 GroupNorm groups: a per-channel constant added
// before that norm cancels, so the emb_layers LoRA of the first ResBlocks has a true gradient of
// 0 (both runs give ~1e-21 noise). Such tensors are compared against the largest gradient.
TEST(GradientCheckpointing, TinyUnetAndTextEncodersSameLoraGradientsFp64) {
  torch::manual_seed(0);
  auto model = models::SdxlModel::create(models::SdxlConfig::tiny(), {true, true, false});
  for (auto& p : model.unet->parameters()) p.set_requires_grad(false);
  for (auto& p : model.te1->parameters()) p.set_requires_grad(false);
  for (auto& p : model.te2->parameters()) p.set_requires_grad(false);
  model.unet->to(torch::kDouble);
  model.te1->to(torch::kDouble);
  model.te2->to(torch::kDouble);
  lora::LoraNetworkOptions o;
  o.rank = 4;
  o.conv_rank = 2;  // LoRA in ResBlocks too
  lora::LoraNetwork net(model, o);
  net->to(torch::kDouble);
  randomize_up(net);
  net->apply();
  models::SdxlConditioner cond(model.te1, model.te2);
  const torch::Tensor ids = torch::randint(1, 49000, {2, 77}, torch::kLong);
  const torch::Tensor x = torch::randn({2, 4, 16, 16}, torch::kDouble).requires_grad_(true);
  const torch::Tensor t = torch::tensor({10, 700}, torch::kLong);
  const torch::Tensor target = torch::randn({2, 4, 16, 16}, torch::kDouble);
  auto step = [&](bool checkpointing) {
    model.unet->set_gradient_checkpointing(checkpointing);
    model.te1->set_gradient_checkpointing(checkpointing);
    model.te2->set_gradient_checkpointing(checkpointing);
    for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
    const auto emb = cond.encode(ids, ids);
    const torch::Tensor hw = torch::full({2, 2}, 128.0, torch::kDouble);
    const torch::Tensor y = models::size_embedding(emb.pooled_g, hw, torch::zeros({2, 2}, torch::kDouble), hw);
    const torch::Tensor loss = torch::mse_loss(model.unet->forward(x, t, emb.context, y), target);
    loss.backward();
    return std::make_pair(loss.item<double>(), lora_grads(net));
  };
  const auto [loss_plain, plain] = step(false);
  const auto [loss_ckpt, ckpt] = step(true);
  EXPECT_EQ(loss_plain, loss_ckpt);
  ASSERT_EQ(plain.size(), ckpt.size());
  ASSERT_GT(plain.size(), 100u);
  // SDXL reads TE1's penultimate layer: its last layer's LoRA gets no gradient; all others do.
  const std::string te1_last =
      str_cat("lora_te1_text_model_encoder_layers_", models::SdxlConfig::tiny().te1.layers - 1, "_");
  double largest = 0;
  for (const auto& g : plain) largest = std::max(largest, g.second.norm().item<double>());
  double worst = 0;
  int cancelled = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    ASSERT_EQ(plain[i].first, ckpt[i].first);
    const bool unused = plain[i].first.find(te1_last) != std::string::npos;
    EXPECT_EQ(plain[i].second.abs().max().item<double>() == 0, unused) << plain[i].first;
    EXPECT_EQ(ckpt[i].second.abs().max().item<double>() == 0, unused) << ckpt[i].first;
    if (unused) continue;
    if (plain[i].second.norm().item<double>() < 1e-12 * largest) {  // a true zero (see above)
      ++cancelled;
      EXPECT_LT(ckpt[i].second.norm().item<double>(), 1e-12 * largest) << plain[i].first;
      continue;
    }
    const double e = test::norm_rel_error(ckpt[i].second, plain[i].second);
    if (e > 1e-6) ADD_FAILURE() << plain[i].first << " " << e;
    worst = std::max(worst, e);
  }
  EXPECT_LE(worst, 1e-6);
  EXPECT_EQ(cancelled, 10);  // emb_layers LoRA (down, up) of the 5 level-0 ResBlocks (2 in, 3 out)
  std::printf("[ckpt] %zu LoRA tensors, worst relative gradient difference %.3g, %d cancelled\n", plain.size(),
              worst, cancelled);
  for (auto& p : model.unet->parameters()) EXPECT_FALSE(p.grad().defined());
}

}  // namespace
}  // namespace ls
