// A LoRA network over an SDXL model: which layers it adapts (kohya's default targets, LoCon convs,
// UNet/TE selection, exclusions), their kohya names, and the modules themselves.
// Matches kohya-ss/sd-scripts networks/lora.py (LoRANetwork.create_modules): target containers are
// the UNet's transformer blocks (Transformer2DModel), with conv_dim also ResBlocks, Down- and
// Upsample; the text encoders' CLIPAttention and CLIPMLP. Inside a container every Linear and 1x1
// conv gets the network rank, every 3x3 conv the conv rank (skipped when it is 0).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "lora/block_weights.h"
#include "lora/adapter_module.h"
#include "models/sdxl_model.h"

namespace ls::lora {

enum class Part { kUnet, kTe1, kTe2 };
const char* part_prefix(Part part);  // "lora_unet", "lora_te1", "lora_te2"

struct LoraNetworkOptions {
  int64_t rank = 4;        // kohya network_dim
  double alpha = 1.0;      // network_alpha
  int64_t conv_rank = 0;   // conv_dim: 0 = no LoRA on 3x3 convs
  double conv_alpha = 1.0; // conv_alpha
  double dropout = 0.0, rank_dropout = 0.0, module_dropout = 0.0;
  bool unet = true;           // false: kohya's --network_train_text_encoder_only
  bool text_encoders = true;  // false: --network_train_unet_only
  std::vector<std::string> exclude;  // regexes matched against the kohya module name (search)
  /// kohya's block-wise network_args (block_weights.h): with `ranks`, the U-Net's ranks per block.
  BlockArgs blocks;
  /// kohya's modules_dim / modules_alpha (create_network_from_weights, dim_from_weights): exactly
  /// these modules, with these ranks and alphas, replace every rank rule above.
  std::optional<std::map<std::string, ModuleRank>> module_ranks;
  // LyCORIS (network_module = "lycoris.kohya", lycoris/kohya.py create_network): the preset picks
  // the layers ("full": every container kohya's LoCon has, 3x3 convs at conv_rank) and `module`
  // holds the algorithm and its options for every module (its rank, alpha and dropouts are unused:
  // the fields above give them).
  bool lycoris = false;
  std::string preset = "full";
  LoraModuleOptions module;
  std::vector<std::string> network_args;  // kohya's network_args as given (ss_network_args)
};

/// The lycoris presets lorastudio knows (lycoris/config.py BUILTIN_PRESET_CONFIGS for SDXL).
const std::vector<std::string>& lycoris_presets();

/// One layer a LoRA module can attach to.
struct LoraSlot {
  std::string name;  // kohya name, e.g. lora_unet_input_blocks_4_1_proj_in
  Part part;
  LoraTarget target;
  bool conv3x3;        // gets conv_rank / conv_alpha
  bool in_conv_block;  // inside a ResBlock / Downsample / Upsample: only with conv_rank > 0
  bool in_resblock = false;  // the ResBlock ones (lycoris' full-lin preset keeps those)
};

/// The rank and alpha these options give a slot (kohya create_modules' choice); rank 0: no module.
ModuleRank slot_rank(const LoraSlot& slot, const LoraNetworkOptions& options);

/// Every slot of the model for these options, sorted by name (the order kohya's files have).
std::vector<LoraSlot> find_lora_slots(const models::SdxlModel& model, const LoraNetworkOptions& options);
/// Every slot any option could use (UNet with convs, both TEs), by name: for loading files.
std::map<std::string, LoraSlot> all_lora_slots(const models::SdxlModel& model);

class LoraNetworkImpl : public torch::nn::Module {
 public:
  /// Fresh modules for the slots (kohya init). Not attached until apply().
  LoraNetworkImpl(const models::SdxlModel& model, const LoraNetworkOptions& options);
  /// Modules of given ranks/alphas (from a file): values set by the caller.
  LoraNetworkImpl(const std::vector<std::pair<LoraSlot, LoraModuleOptions>>& slots);

  /// Attaches every module to its layer (output = base + delta); idempotent.
  void apply();
  /// Detaches; the base layers compute as without the network.
  void remove();
  void set_multiplier(double multiplier);
  /// Adds every module's weight delta into its base weight (then remove() it to avoid counting twice).
  void merge_into_base();

  const std::vector<std::pair<LoraSlot, std::shared_ptr<AdapterModule>>>& modules() const { return modules_; }
  /// Number of LoRA parameters (every tensor, alpha included) per part.
  std::map<Part, int64_t> parameter_counts() const;

 private:
  void add(const LoraSlot& slot, const LoraModuleOptions& options);
  std::vector<std::pair<LoraSlot, std::shared_ptr<AdapterModule>>> modules_;
  bool applied_ = false;
};
TORCH_MODULE(LoraNetwork);

}  // namespace ls::lora
