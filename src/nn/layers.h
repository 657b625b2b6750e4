// Linear and Conv2d with an adapter hook: the single place LoRA attaches to.
// Parameters are registered as "weight" / "bias", so module paths equal checkpoint keys.
#pragma once

#include <memory>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace ls::nn {

/// Something added to a layer's output: y = base(x) + sum(adapter.delta(x)).
class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual torch::Tensor delta(const torch::Tensor& x) = 0;
};

/// While alive on this thread, new Linear/Conv2d/GroupNorm parameters are left uninitialised
/// (torch::empty): used when every value is about to be overwritten by a checkpoint.
class SkipInitGuard {
 public:
  SkipInitGuard();
  ~SkipInitGuard();
  static bool active();

 private:
  bool previous_;
};

class AdaptableLayer {
 public:
  void add_adapter(std::shared_ptr<Adapter> adapter) { adapters_.push_back(std::move(adapter)); }
  void clear_adapters() { adapters_.clear(); }
  /// Detaches one adapter (by identity); absent ones are ignored.
  void remove_adapter(const Adapter* adapter);
  const std::vector<std::shared_ptr<Adapter>>& adapters() const { return adapters_; }

 protected:
  torch::Tensor apply_adapters(torch::Tensor y, const torch::Tensor& x) const;

 private:
  std::vector<std::shared_ptr<Adapter>> adapters_;
};

class LinearImpl : public torch::nn::Module, public AdaptableLayer {
 public:
  /// Initialised as torch.nn.Linear: kaiming_uniform(a=sqrt(5)), bias U(-1/sqrt(in), 1/sqrt(in)).
  LinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  /// x [..., in] -> [..., out]
  torch::Tensor forward(const torch::Tensor& x);
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }

  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined
};
TORCH_MODULE(Linear);

class Conv2dImpl : public torch::nn::Module, public AdaptableLayer {
 public:
  /// Initialised as torch.nn.Conv2d.
  Conv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1,
             int64_t padding = 0, bool bias = true);
  /// x [B, in, H, W] -> [B, out, H', W']
  torch::Tensor forward(const torch::Tensor& x);
  int64_t in_channels() const { return weight.size(1); }
  int64_t out_channels() const { return weight.size(0); }
  int64_t kernel() const { return weight.size(2); }
  int64_t stride() const { return stride_; }
  int64_t padding() const { return padding_; }

  torch::Tensor weight;  // [out, in, k, k]
  torch::Tensor bias;    // [out]

 private:
  int64_t stride_;
  int64_t padding_;
};
TORCH_MODULE(Conv2d);

/// GroupNorm over [B, C, ...]. upcast=true computes in float32 and casts back (SGM's GroupNorm32).
class GroupNormImpl : public torch::nn::Module {
 public:
  GroupNormImpl(int64_t groups, int64_t channels, double eps, bool upcast = false);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;  // [C]
  torch::Tensor bias;    // [C]

 private:
  int64_t groups_;
  double eps_;
  bool upcast_;
};
TORCH_MODULE(GroupNorm);

/// LayerNorm over the last dimension ("weight", "bias" as torch.nn.LayerNorm).
class LayerNormImpl : public torch::nn::Module {
 public:
  LayerNormImpl(int64_t dim, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);

  torch::Tensor weight;
  torch::Tensor bias;

 private:
  double eps_;
};
TORCH_MODULE(LayerNorm);

}  // namespace ls::nn
