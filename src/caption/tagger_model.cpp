#include "caption/tagger_model.h"

#include <torch/torch.h>

#include "caption/convnext.h"
#include "caption/eva02.h"
#include "caption/swinv2.h"
#include "caption/vit.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "nn/load_report.h"

namespace ls::caption {

namespace {
constexpr const char* kFolderHint =
    "a tagger folder holds config.json, model.safetensors and selected_tags.csv, as the hub's "
    "SmilingWolf/wd-*-tagger-v3 repositories do";

// timm's non-persistent buffers, present in some exported files and recomputed here.
bool is_recomputed_buffer(const std::string& key) {
  for (const char* name : {"relative_position_index", "relative_coords_table", "attn_mask", "k_bias", "rope."})
    if (key.find(name) != std::string::npos) return true;
  return false;
}
}  // namespace

std::shared_ptr<TaggerNet> make_tagger_net(const TaggerConfig& config) {
  switch (config.family) {
    case TaggerFamily::kVit: return std::make_shared<VitNet>(config);
    case TaggerFamily::kEva02: return std::make_shared<Eva02Net>(config);
    case TaggerFamily::kSwinV2: return std::make_shared<SwinV2Net>(config);
    case TaggerFamily::kConvNext: return std::make_shared<ConvNextNet>(config);
  }
  LS_FAIL("unknown tagger family");
}

std::filesystem::path tagger_file(const std::filesystem::path& dir, const std::string& name) {
  LS_CHECK(std::filesystem::is_directory(dir), dir.string(), ": no such folder; pass --model_dir with ", kFolderHint);
  auto path = dir / name;
  if (std::filesystem::exists(path)) return path;
  if (name == "model.safetensors" && std::filesystem::exists(dir / "model.onnx"))
    LS_FAIL(dir.string(), ": holds model.onnx but not model.safetensors; lorastudio reads the safetensors weights "
            "(download model.safetensors from the same hub repository into this folder)");
  LS_FAIL(path.string(), ": missing; ", kFolderHint);
}

TaggerModel load_tagger_model(const std::filesystem::path& dir, c10::Device device, c10::ScalarType dtype) {
  TaggerModel model;
  model.dir = dir;
  auto config_path = tagger_file(dir, "config.json");
  auto weights_path = tagger_file(dir, "model.safetensors");
  model.config = read_tagger_config(config_path.string());
  io::SafetensorsReader reader(weights_path);
  {
    nn::SkipInitGuard skip_init;  // every value comes from the file
    model.net = make_tagger_net(model.config);
  }
  model.net->to(device, dtype);
  nn::LoadOptions options;
  options.ignore = is_recomputed_buffer;
  // The original SwinV2 layout (stage-0 downsample) converts as timm's checkpoint_filter_fn does.
  if (model.config.family == TaggerFamily::kSwinV2 && reader.contains("layers.0.downsample.reduction.weight"))
    options.rename = SwinV2Net::legacy_key;
  nn::LoadReport report;
  nn::load_module_state(reader, *model.net, report, options);
  LS_CHECK(report.empty(), weights_path.string(), ": does not match ", config_path.string(), " (",
           model.config.architecture, "; ", report.summary(),
           "); check that the file is complete and comes with this config.json");
  model.net->eval();
  return model;
}

}  // namespace ls::caption
