#include "lora/lokr_module.h"

#include <cmath>

#include <torch/torch.h>

#include "core/error.h"

namespace ls::lora {

std::pair<int64_t, int64_t> lokr_factorization(int64_t dimension, int64_t factor) {
  if (factor > 0 && dimension % factor == 0) {
    int64_t m = factor, n = dimension / factor;
    if (m > n) std::swap(m, n);
    return {m, n};
  }
  if (factor < 0) factor = dimension;
  // Walk the divisors upwards while m + n shrinks and m stays within the factor.
  int64_t m = 1, n = dimension;
  const int64_t length = m + n;
  while (m < n) {
    int64_t next = m + 1;
    while (dimension % next != 0) ++next;
    const int64_t other = dimension / next;
    if (next + other > length || next > factor) break;
    m = next, n = other;
  }
  if (m > n) std::swap(m, n);
  return {m, n};
}

LokrLayout lokr_layout(c10::IntArrayRef base, const LoraModuleOptions& o) {
  if (o.lokr_layout) return *o.lokr_layout;
  LokrLayout l;
  auto [in1, in2] = lokr_factorization(base[1], o.factor);
  auto [out1, out2] = lokr_factorization(base[0], o.factor);
  if (o.unbalanced_factorization) std::swap(out1, out2);
  l.out1 = out1, l.out2 = out2, l.in1 = in1, l.in2 = in2;
  const double r = static_cast<double>(o.rank);
  l.w1_full = !(o.decompose_both && r < std::max(out1, in1) / 2.0 && !o.full_matrix);
  l.w2_full = r >= std::max(out2, in2) / 2.0 || o.full_matrix;
  const bool kernel = base.size() == 4 && (base[2] != 1 || base[3] != 1);
  l.tucker = !l.w2_full && o.tucker && kernel;
  return l;
}

TensorShapes lokr_tensor_shapes(c10::IntArrayRef base, const LoraModuleOptions& o) {
  const LokrLayout l = lokr_layout(base, o);
  const int64_t r = o.rank;
  std::vector<int64_t> kernel(base.begin() + 2, base.end());
  int64_t kk = 1;
  for (int64_t k : kernel) kk *= k;
  TensorShapes s;
  if (l.w1_full) s.push_back({"lokr_w1", {l.out1, l.in1}});
  else s.insert(s.end(), {{"lokr_w1_a", {l.out1, r}}, {"lokr_w1_b", {r, l.in1}}});
  if (l.w2_full) {
    std::vector<int64_t> w2{l.out2, l.in2};
    w2.insert(w2.end(), kernel.begin(), kernel.end());
    s.push_back({"lokr_w2", w2});
  } else if (l.tucker) {
    std::vector<int64_t> core{r, r};
    core.insert(core.end(), kernel.begin(), kernel.end());
    s.insert(s.end(), {{"lokr_w2_a", {r, l.out2}}, {"lokr_w2_b", {r, l.in2}}, {"lokr_t2", core}});
  } else {
    s.insert(s.end(), {{"lokr_w2_a", {l.out2, r}}, {"lokr_w2_b", {r, l.in2 * kk}}});
  }
  return s;
}

LokrModule::LokrModule(const LoraTarget& target, const LoraModuleOptions& options)
    : AdapterModule(target, options), layout_(lokr_layout(target.weight().sizes(), options)) {
  const auto base = target.weight().sizes();
  LS_CHECK(layout_.out1 * layout_.out2 == base[0] && layout_.in1 * layout_.in2 == base[1],
           "LoKr factors ", layout_.out1, "x", layout_.out2, " / ", layout_.in1, "x", layout_.in2,
           " do not make the layer's ", base[0], " / ", base[1], " channels");
  const TensorShapes shapes = lokr_tensor_shapes(base, options);
  auto t = register_tensors(shapes);
  for (size_t i = 0; i < shapes.size(); ++i) {
    const std::string& n = shapes[i].first;
    (n == "lokr_w1" ? w1_ : n == "lokr_w1_a" ? w1a_ : n == "lokr_w1_b" ? w1b_ : n == "lokr_w2" ? w2_
     : n == "lokr_w2_a" ? w2a_ : n == "lokr_w2_b" ? w2b_ : t2_) = t[i];
  }
  torch::NoGradGuard no_grad;
  const double a = std::sqrt(5.0);
  if (layout_.w2_full) {
    w2_.zero_();
  } else {
    if (layout_.tucker) torch::nn::init::kaiming_uniform_(t2_, a);
    torch::nn::init::kaiming_uniform_(w2a_, a);
    w2b_.zero_();
  }
  if (layout_.w1_full) {
    torch::nn::init::kaiming_uniform_(w1_, a);
  } else {
    torch::nn::init::kaiming_uniform_(w1a_, a);
    torch::nn::init::kaiming_uniform_(w1b_, a);
  }
  // lycoris: with both halves full there is no rank to scale by; alpha is written as the rank.
  if (layout_.w1_full && layout_.w2_full && !options.lokr_layout) alpha_.fill_(static_cast<double>(options.rank));
  finish();
}

double LokrModule::scale() const {
  // Both halves full: scale 1 whatever alpha says (lycoris forces it, ComfyUI reads no rank).
  if (layout_.w1_full && layout_.w2_full) return 1.0;
  return AdapterModule::scale();
}

torch::Tensor LokrModule::diff_weight() const {
  const auto base = target_.weight().sizes();
  torch::Tensor w1 = layout_.w1_full ? w1_ : torch::mm(w1a_, w1b_);  // [out1, in1]
  torch::Tensor w2;
  if (layout_.w2_full) {
    w2 = w2_;
  } else if (layout_.tucker) {
    w2 = torch::einsum("ijkl,ip,jr->prkl", {t2_, w2a_, w2b_});  // [out2, in2, k, k]
  } else {
    w2 = torch::mm(w2a_, w2b_);  // [out2, in2*k*k]
    if (base.size() == 4) w2 = w2.view({layout_.out2, layout_.in2, base[2], base[3]});
  }
  while (w1.dim() < w2.dim()) w1 = w1.unsqueeze(-1);
  return torch::kron(w1, w2.contiguous()).reshape(base) * scale();
}

}  // namespace ls::lora
