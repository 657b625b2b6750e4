// A WD14 tagger's architecture and input, read from the model folder's config.json as timm writes
// it (timm/models/_hub.py save_for_hf: "architecture", "num_classes", "global_pool", "model_args",
// "pretrained_cfg"). The architecture name selects timm's defaults (a row per supported timm
// name, timm 1.0's registrations in models/vision_transformer.py, eva.py, swin_transformer_v2.py,
// convnext.py); model_args override them, exactly as timm.create_model(name, **model_args) does.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace ls::caption {

enum class TaggerFamily { kVit, kEva02, kSwinV2, kConvNext };

struct TaggerConfig {
  std::string architecture;  // timm name, e.g. "vit_base_patch16_224"
  TaggerFamily family = TaggerFamily::kVit;
  int64_t num_classes = 0;

  // ViT / EVA02 / SwinV2 patch grid
  int64_t img_size = 224;
  int64_t patch_size = 16;
  int64_t embed_dim = 768;  // ViT/EVA width; SwinV2 stage-0 width
  int64_t depth = 12;       // ViT/EVA blocks
  int64_t num_heads = 12;   // ViT/EVA heads
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  bool class_token = true;
  std::string global_pool = "token";  // "token" or "avg"
  int fc_norm = -1;                   // -1: timm's None (on when global_pool is "avg"), 0 off, 1 on
  std::string act_layer = "gelu";     // "gelu" (erf) or "gelu_tanh"

  // EVA02
  bool qkv_fused = true;
  bool swiglu_mlp = false;
  bool scale_mlp = false;
  bool use_rot_pos_emb = false;
  std::array<int64_t, 2> ref_feat_shape{0, 0};  // 0: none

  // SwinV2 and ConvNeXt stages
  std::vector<int64_t> depths;
  std::vector<int64_t> stage_heads;               // SwinV2 num_heads per stage
  int64_t window_size = 7;                        // SwinV2
  std::vector<int64_t> pretrained_window_sizes;   // SwinV2, 0 = the window itself
  std::vector<int64_t> dims;                      // ConvNeXt widths per stage

  // pretrained_cfg: the input the model was trained on
  int64_t input_size = 224;
  std::array<float, 3> mean{0.5f, 0.5f, 0.5f};
  std::array<float, 3> std{0.5f, 0.5f, 0.5f};

  /// timm's use_fc_norm: explicit, else on for average pooling.
  bool uses_fc_norm() const { return fc_norm >= 0 ? fc_norm == 1 : global_pool == "avg"; }
  int64_t num_prefix_tokens() const { return class_token ? 1 : 0; }
};

/// The timm architecture names lorastudio builds (the five WD14 v3 taggers' bases).
std::vector<std::string> supported_architectures();

/// timm's defaults for one architecture name; ls::Error naming the name and the supported ones.
TaggerConfig architecture_defaults(const std::string& architecture, const std::string& name_for_errors);

/// Parses config.json text; `name_for_errors` is the file's path. Unknown model_args that change
/// the computation are refused by name (dropout rates, which do nothing at inference, are accepted).
TaggerConfig parse_tagger_config(const std::string& json_text, const std::string& name_for_errors);
TaggerConfig read_tagger_config(const std::string& path);

}  // namespace ls::caption
