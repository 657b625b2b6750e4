#include "lora/loha_module.h"

#include <torch/torch.h>

namespace ls::lora {

namespace {
bool loha_uses_tucker(c10::IntArrayRef base, const LoraModuleOptions& o) {
  return o.tucker && base.size() == 4 && (base[2] != 1 || base[3] != 1);
}
}  // namespace

TensorShapes loha_tensor_shapes(c10::IntArrayRef base, const LoraModuleOptions& o) {
  const int64_t r = o.rank, out = base[0], in = base[1];
  if (loha_uses_tucker(base, o)) {
    const std::vector<int64_t> core{r, r, base[2], base[3]};
    return {{"hada_w1_a", {r, out}}, {"hada_w1_b", {r, in}}, {"hada_w2_a", {r, out}},
            {"hada_w2_b", {r, in}},  {"hada_t1", core},      {"hada_t2", core}};
  }
  int64_t cols = in;
  for (size_t i = 2; i < base.size(); ++i) cols *= base[i];
  return {{"hada_w1_a", {out, r}}, {"hada_w1_b", {r, cols}}, {"hada_w2_a", {out, r}}, {"hada_w2_b", {r, cols}}};
}

LohaModule::LohaModule(const LoraTarget& target, const LoraModuleOptions& options) : AdapterModule(target, options) {
  auto t = register_tensors(loha_tensor_shapes(target.weight().sizes(), options));
  w1a_ = t[0], w1b_ = t[1], w2a_ = t[2], w2b_ = t[3];
  torch::NoGradGuard no_grad;
  if (t.size() == 6) {
    t1_ = t[4], t2_ = t[5];
    t1_.normal_(0.0, 0.1);
    t2_.normal_(0.0, 0.1);
  }
  w1b_.normal_(0.0, 1.0);
  w1a_.normal_(0.0, 0.1);
  w2b_.normal_(0.0, 1.0);
  w2a_.zero_();
  finish();
}

torch::Tensor LohaModule::diff_weight() const {
  const auto shape = target_.weight().sizes();
  torch::Tensor w;
  if (tucker()) {
    // rebuild = t x_1 w_a x_2 w_b: [r, r, k, k], [r, in], [r, out] -> [out, in, k, k]
    const auto one = torch::einsum("ijkl,jr,ip->prkl", {t1_, w1b_, w1a_});
    const auto two = torch::einsum("ijkl,jr,ip->prkl", {t2_, w2b_, w2a_});
    w = one * two;
  } else {
    w = torch::mm(w1a_, w1b_) * torch::mm(w2a_, w2b_);  // [out, in*k*k]
  }
  return w.reshape(shape) * scale();
}

}  // namespace ls::lora
