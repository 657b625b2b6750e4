// Gradient checkpointing: run a block without keeping its activations and recompute it during
// backward (PyTorch's reentrant torch.utils.checkpoint, which kohya enables per ResnetBlock and
// transformer block with --gradient_checkpointing). The device's RNG state is saved and restored
// around the recomputation, so dropout inside the block draws the same numbers twice.
#pragma once

#include <functional>
#include <vector>

#include <torch/torch.h>

namespace ls::nn {

using CheckpointFn = std::function<torch::Tensor(const std::vector<torch::Tensor>& inputs)>;

/// fn(inputs) with its intermediate activations freed. Backward re-runs fn with grad enabled and
/// back-propagates into `inputs` and into every leaf fn reads (parameters: their .grad accumulates).
/// `trains_parameters`: fn reads parameters that need gradients, so the block must join the graph
/// even when no input needs a gradient (the first blocks of a frozen UNet with LoRA in them;
/// reentrant torch.utils.checkpoint silently drops those gradients). Without grad mode it is a
/// plain call.
torch::Tensor checkpoint(const CheckpointFn& fn, const std::vector<torch::Tensor>& inputs, bool trains_parameters);

/// Whether any parameter of the module (recursively, adapters attached to its layers included)
/// requires a gradient.
bool has_trainable_parameters(const torch::nn::Module& module);

}  // namespace ls::nn
