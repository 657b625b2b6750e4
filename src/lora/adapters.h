// The algorithms behind one door: a fresh module of a kind, the tensors a kind has (for plans), and
// what a file's tensors say a module is (for loading kohya and lycoris files alike: the algorithm
// from its keys, rank, Tucker, LoKr factors and DoRA axis from their shapes, as lycoris'
// make_module_from_state_dict and ComfyUI's weight adapters read them).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lora/adapter_module.h"

namespace ls::lora {

/// A fresh module of options.algo for the target (each algorithm's own init).
std::shared_ptr<AdapterModule> make_adapter(const LoraTarget& target, const LoraModuleOptions& options);

/// Every tensor a module of these options has, alpha ([]) and dora_scale included, by file key.
TensorShapes adapter_tensor_shapes(c10::IntArrayRef base, const LoraModuleOptions& options);

/// The keys (after "<module>.") a module may have in a file, of any algorithm.
bool is_adapter_key(const std::string& suffix);

/// The options a file module's tensors (key -> shape, keys after "<module>.") imply for a layer of
/// weight shape `base`; alpha is left for the caller. Shapes that fit no module of the layer are an
/// error naming `what` (file: module) and the key.
LoraModuleOptions adapter_options_from_shapes(const std::map<std::string, std::vector<int64_t>>& shapes,
                                              c10::IntArrayRef base, const std::string& what);

}  // namespace ls::lora
