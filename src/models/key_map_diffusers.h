// diffusers / transformers names <-> lorastudio's module names (SGM's for the UNet and the VAE,
// Hugging Face CLIP for both text encoders), as prefix tables: one rule renames a name prefix and
// says how the tensor changes on the way (a diffusers Linear [O, I] is an SGM 1x1 conv
// [O, I, 1, 1]; transformers' text_projection.weight [P, C] is open_clip's [C, P]). The UNet's
// and the VAE's tables depend on the architecture (how many levels and blocks): see
// key_map_diffusers_unet.h / key_map_diffusers_vae.h. References: diffusers 0.42
// loaders/single_file_utils.py (DIFFUSERS_TO_LDM_MAPPING, convert_ldm_*_checkpoint,
// convert_open_clip_checkpoint), kohya-ss/sd-scripts library/sdxl_model_util.py.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>


namespace ls::models {

enum class TensorTransform {
  kNone,
  kTranspose,  // [a, b] <-> [b, a]
  kConv1x1,    // diffusers [O, I] <-> lorastudio [O, I, 1, 1]
};

/// One rename: a prefix ending in '.' (the rest of the name is kept) or a whole name.
struct KeyRule {
  std::string diffusers;
  std::string lorastudio;
  TensorTransform transform = TensorTransform::kNone;
  bool legacy = false;  // another spelling of the same tensor: read, never written
};

struct MappedKey {
  std::string key;
  TensorTransform transform = TensorTransform::kNone;
};

class KeyMap {
 public:
  KeyMap() = default;
  explicit KeyMap(std::vector<KeyRule> rules);
  /// The longest matching rule wins; nullopt when no rule matches.
  std::optional<MappedKey> to_lorastudio(const std::string& diffusers_key) const;
  std::optional<MappedKey> to_diffusers(const std::string& lorastudio_key) const;
  const std::vector<KeyRule>& rules() const { return rules_; }

 private:
  std::vector<KeyRule> rules_;
};

/// A diffusers-side tensor as lorastudio holds it, and back. Views where possible.
at::Tensor to_lorastudio_tensor(const at::Tensor& t, TensorTransform transform);
at::Tensor to_diffusers_tensor(const at::Tensor& t, TensorTransform transform);
/// The same for shapes (to check a file before reading its data).
std::vector<int64_t> to_lorastudio_shape(std::vector<int64_t> shape, TensorTransform transform);

/// transformers' CLIPTextModel (text_encoder/): the names are lorastudio's TE1 names (transformers
/// 5 drops their "text_model." head: read too).
const KeyMap& diffusers_te1_map();
/// transformers' CLIPTextModelWithProjection (text_encoder_2/): HF names like lorastudio's TE2,
/// but text_projection.weight [P, C] (a Linear) is the transposed open_clip projection [C, P].
const KeyMap& diffusers_te2_map();
/// transformers >= 4.31 stopped saving this buffer; older files carry it. Nothing reads it.
bool is_clip_position_ids(const std::string& key);

}  // namespace ls::models
