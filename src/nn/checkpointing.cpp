// A custom autograd Function holding the block as a capsule; backward recomputes and calls the
// engine re-entrantly, as torch.utils.checkpoint(use_reentrant=True) does.
#include "nn/checkpointing.h"

#include <ATen/Context.h>

#include "nn/layers.h"
#include <mutex>

namespace ls::nn {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct FnHolder : torch::CustomClassHolder {
  explicit FnHolder(CheckpointFn f) : fn(std::move(f)) {}
  CheckpointFn fn;
};

at::Tensor rng_state(c10::Device device) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(c10::Device device, const at::Tensor& state) {
  at::Generator gen = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  // `anchor`: an empty leaf that requires grad, so the node is recorded when only parameters
  // inside the block need gradients; its own gradient stays undefined.
  static torch::Tensor forward(AutogradContext* ctx, c10::intrusive_ptr<FnHolder> holder, const c10::optional<torch::Tensor>& anchor,
                               at::TensorList inputs) {
    const c10::Device device = inputs.front().device();
    ctx->saved_data["fn"] = c10::IValue::make_capsule(holder);
    ctx->saved_data["rng"] = rng_state(device);
    if (device.type() != c10::DeviceType::CPU) ctx->saved_data["cpu_rng"] = rng_state(c10::Device(c10::kCPU));
    ctx->save_for_backward(inputs.vec());
    return holder->fn(inputs.vec());  // grad mode is off here: no graph, no activations kept
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto holder = c10::static_intrusive_pointer_cast<FnHolder>(ctx->saved_data["fn"].toCapsule());
    const variable_list saved = ctx->get_saved_variables();
    std::vector<torch::Tensor> inputs;
    for (const torch::Tensor& t : saved) inputs.push_back(t.detach().requires_grad_(t.requires_grad()));
    const c10::Device device = saved.front().device();

    // Recompute under the forward's RNG state, then put the current state back.
    const at::Tensor now = rng_state(device);
    const bool other_device = device.type() != c10::DeviceType::CPU;
    const at::Tensor now_cpu = other_device ? rng_state(c10::Device(c10::kCPU)) : at::Tensor();
    set_rng_state(device, ctx->saved_data["rng"].toTensor());
    if (other_device) set_rng_state(c10::Device(c10::kCPU), ctx->saved_data["cpu_rng"].toTensor());
    torch::Tensor out;
    {
      torch::AutoGradMode enable(true);
      out = holder->fn(inputs);
    }
    set_rng_state(device, now);
    if (other_device) set_rng_state(c10::Device(c10::kCPU), now_cpu);

    if (out.requires_grad()) torch::autograd::backward({out}, {grad_outputs.at(0)});
    variable_list grads;
    grads.push_back(torch::Tensor());  // the block itself
    grads.push_back(torch::Tensor());  // the anchor
    for (const torch::Tensor& t : inputs) grads.push_back(t.requires_grad() ? t.grad() : torch::Tensor());
    return grads;
  }
};

}  // namespace

torch::Tensor checkpoint(const CheckpointFn& fn, const std::vector<torch::Tensor>& inputs, bool trains_parameters) {
  TORCH_CHECK(!inputs.empty(), "checkpoint needs at least one input tensor");
  if (!torch::GradMode::is_enabled()) return fn(inputs);
  c10::optional<torch::Tensor> anchor;
  if (trains_parameters) anchor = torch::empty({0}, torch::TensorOptions().requires_grad(true));
  return CheckpointFunction::apply(c10::make_intrusive<FnHolder>(fn), anchor, at::TensorList(inputs));
}

namespace {

// Adapters (LoRA) are not children of the layers they attach to: look into them too.
bool adapters_train(const torch::nn::Module& module) {
  const auto* layer = dynamic_cast<const AdaptableLayer*>(&module);
  if (!layer) return false;
  for (const auto& adapter : layer->adapters()) {
    const auto* m = dynamic_cast<const torch::nn::Module*>(adapter.get());
    if (m && has_trainable_parameters(*m)) return true;
  }
  return false;
}

}  // namespace

bool has_trainable_parameters(const torch::nn::Module& module) {
  for (const torch::Tensor& p : module.parameters(/*recurse=*/true))
    if (p.requires_grad()) return true;
  if (adapters_train(module)) return true;
  for (const auto& child : module.modules(/*include_self=*/false))
    if (adapters_train(*child)) return true;
  return false;
}

}  // namespace ls::nn
