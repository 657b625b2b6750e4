// The adapter a LoRA network puts on one Linear or Conv2d, as one mechanism for every algorithm:
// kohya's LoRA/LoCon (networks/lora.py) and LyCORIS' LoRA, LoHa and LoKr (lycoris-lora 4.1.3,
// lycoris/modules/{locon,loha,lokr}.py), each optionally weight-decomposed (DoRA, dora_wd). An
// algorithm only says which tensors it has (names as the files have them), how they start and the
// weight difference they stand for; dropouts, DoRA, the forward and the merge live here.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

#include "nn/layers.h"

namespace ls::lora {

/// kohya's networks.lora LoRA (also lycoris' "lora"/"locon"), LyCORIS' LoHa and LoKr.
enum class Algo { kLora, kLoha, kLokr };
const char* algo_name(Algo algo);  // "lora", "loha", "lokr" (lycoris' algo= spelling)

/// A LoKr module's Kronecker factors: W = kron(w1 [out1, in1], w2 [out2, in2, k, k]); each half
/// full or a rank-r product (w2 optionally Tucker-decomposed over the kernel).
struct LokrLayout {
  int64_t out1 = 1, out2 = 1, in1 = 1, in2 = 1;
  bool w1_full = true, w2_full = true, tucker = false;
};

struct LoraModuleOptions {
  int64_t rank = 4;
  double alpha = 1.0;  // 0 means "= rank", as kohya and lycoris
  double dropout = 0.0;         // on the rank-dim activations (kohya --network_dropout; lycoris ignores it)
  double rank_dropout = 0.0;    // kohya: drops rank channels per sample; lycoris: rows of the rebuilt delta
  double module_dropout = 0.0;  // skips the whole adapter per call with this probability
  Algo algo = Algo::kLora;
  bool lycoris = false;  // lycoris.kohya's module: the forward rebuilds the weight (its dropout rules)
  bool dora = false;     // weight decomposition (lycoris dora_wd): a trained magnitude per row
  bool wd_on_out = true;          // DoRA magnitude per output row (lycoris wd_on_output) or per input column
  bool tucker = false;            // use_tucker: LoHa / LoKr convs with a kernel > 1 get a core tensor
  int64_t factor = -1;            // LoKr: factorization(dim, factor)
  bool decompose_both = false;    // LoKr: w1 low-rank too (when the rank is small enough)
  bool full_matrix = false;       // LoKr: w2 always full
  bool unbalanced_factorization = false;  // LoKr: the output factors swapped
  bool rank_dropout_scale = false;        // lycoris: rank-dropout mask divided by its mean
  bool rs_lora = false;                   // rank-stabilised: scale alpha / sqrt(rank)
  std::optional<LokrLayout> lokr_layout;  // a file's factor shapes (else lycoris' rules decide)
};

/// The base layer a module wraps: exactly one of linear / conv is set.
struct LoraTarget {
  nn::Linear linear{nullptr};
  nn::Conv2d conv{nullptr};
  int64_t in_features() const;
  int64_t out_features() const;
  bool is_conv() const { return static_cast<bool>(conv); }
  /// The base weight ([out, in] or [out, in, k, k]).
  torch::Tensor weight() const;
  void add_adapter(std::shared_ptr<nn::Adapter> adapter) const;
  void remove_adapter(const nn::Adapter* adapter) const;
};

/// Names and shapes of a module's tensors for a base weight of `base` shape, in the files' key
/// spelling ("lora_down.weight", "hada_w1_a", "lokr_w2_b", ...); each algorithm has one.
using TensorShapes = std::vector<std::pair<std::string, std::vector<int64_t>>>;

/// DoRA's magnitude: [out, 1(, 1, 1)] per output row, [1, in(, 1, 1)] per input column.
std::vector<int64_t> dora_scale_shape(c10::IntArrayRef base, bool wd_on_out);

class AdapterModule : public torch::nn::Module, public nn::Adapter {
 public:
  /// x as the base layer sees it -> the term added to the base output.
  torch::Tensor delta(const torch::Tensor& x) override;
  /// The weight difference this module stands for at its multiplier (DoRA included), shaped
  /// like the base weight: what a merge adds.
  torch::Tensor weight_delta() const;
  /// alpha/rank times the rebuilt weight difference (no multiplier, no dropout, no DoRA).
  virtual torch::Tensor diff_weight() const = 0;

  /// Every tensor under its key after "<module name>." in the files (alpha, dora_scale,
  /// lora_down.weight, hada_w1_a, ...): the live tensors.
  std::vector<std::pair<std::string, torch::Tensor>> named_state() const;

  Algo algo() const { return options_.algo; }
  int64_t rank() const { return options_.rank; }
  double alpha() const { return alpha_.item<double>(); }
  virtual double scale() const { return alpha() / static_cast<double>(options_.rank); }
  void set_multiplier(double m) { multiplier_ = m; }
  double multiplier() const { return multiplier_; }
  const LoraTarget& target() const { return target_; }
  const LoraModuleOptions& options() const { return options_; }

  torch::Tensor alpha_;       // 0-dim buffer "alpha"
  torch::Tensor dora_scale_;  // DoRA magnitude [out, 1(, 1, 1)] or [1, in(, 1, 1)]; undefined without

 protected:
  AdapterModule(const LoraTarget& target, const LoraModuleOptions& options);
  /// Registers the algorithm's tensors (float32, to be initialised) as parameters, in order.
  std::vector<torch::Tensor> register_tensors(const TensorShapes& shapes);
  /// After the algorithm's init: DoRA's magnitude from the base weight, then the base's device and dtype.
  void finish();
  /// kohya's LoRA computes its delta through the rank bottleneck; every other module rebuilds the weight.
  virtual bool bypass() const { return false; }
  virtual torch::Tensor bypass_delta(const torch::Tensor& x) { return x; }

  LoraTarget target_;
  LoraModuleOptions options_;
  double multiplier_ = 1.0;

 private:
  torch::Tensor effective_delta(torch::Tensor diff) const;
};

}  // namespace ls::lora
