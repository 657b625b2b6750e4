// Separate VAE files; see vae_file.h.
#include "models/vae_file.h"

#include <map>
#include <memory>

#include <torch/torch.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/checkpoint_kind.h"
#include "models/diffusers_config.h"
#include "models/diffusers_folder.h"
#include "models/key_map_diffusers_vae.h"
#include "models/mapped_tensors.h"
#include "nn/layers.h"
#include "nn/load_report.h"

namespace fs = std::filesystem;

namespace ls::models {

namespace {

// Prefixes a standalone VAE's names may carry: a checkpoint's, diffusers' single-file "vae.".
constexpr const char* kVaeFilePrefixes[] = {"first_stage_model.", "vae."};
// Training leftovers some ldm VAE files keep (the discriminator, EMA bookkeeping).
constexpr const char* kVaeFileLeftovers[] = {"loss.", "model_ema."};

bool vae_starts(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

// The index after `head` in names like head + "3.rest" (-1 when none).
int64_t vae_max_index(const std::vector<io::TensorInfo>& tensors, const std::string& head) {
  int64_t best = -1;
  for (const auto& t : tensors) {
    if (!vae_starts(t.name, head)) continue;
    const size_t end = t.name.find('.', head.size());
    try {
      best = std::max<int64_t>(best, std::stoll(t.name.substr(head.size(), end - head.size())));
    } catch (const std::exception&) {
    }
  }
  return best;
}

struct VaeReaders {
  std::vector<std::unique_ptr<io::SafetensorsReader>> owned;
  std::vector<const io::SafetensorsReader*> view;
  std::vector<io::TensorInfo> all;  // every tensor, prefix removed
};

VaeReaders vae_open(const VaeFileInfo& info) {
  VaeReaders r;
  for (const auto& f : info.files) {
    r.owned.push_back(std::make_unique<io::SafetensorsReader>(f));
    r.view.push_back(r.owned.back().get());
    for (auto t : r.owned.back()->tensors()) {
      if (!vae_starts(t.name, info.prefix)) continue;
      t.name = t.name.substr(info.prefix.size());
      r.all.push_back(std::move(t));
    }
  }
  return r;
}

// The AutoencoderKL the shapes describe (ldm names, after the map for diffusers files).
VaeConfig vae_config_from_shapes(const std::map<std::string, std::vector<int64_t>>& ldm, int64_t levels,
                                 int64_t blocks, const std::string& label) {
  const auto shape = [&](const std::string& name, size_t dims) {
    const auto it = ldm.find(name);
    LS_CHECK(it != ldm.end() && it->second.size() == dims, label, ": no ", name, " of ", dims,
             " dimensions; not an AutoencoderKL");
    return it->second;
  };
  VaeConfig c;
  c.in_channels = shape("encoder.conv_in.weight", 4)[1];
  c.ch = shape("encoder.conv_in.weight", 4)[0];
  c.out_channels = shape("decoder.conv_out.weight", 4)[0];
  c.num_res_blocks = blocks;
  c.ch_mult.clear();
  for (int64_t level = 0; level < levels; ++level) {
    const int64_t width = shape(str_cat("encoder.down.", level, ".block.0.conv1.weight"), 4)[0];
    LS_CHECK(c.ch > 0 && width % c.ch == 0, label, ": level ", level, " width ", width, " is not a multiple of ", c.ch);
    c.ch_mult.push_back(width / c.ch);
  }
  c.z_channels = shape("decoder.conv_in.weight", 4)[1];
  c.embed_dim = shape("post_quant_conv.weight", 4)[1];
  try {
    c.validate();
  } catch (const ls::Error& e) {
    LS_FAIL(label, ": ", e.what());
  }
  return c;
}

bool vae_leftover(const std::string& name) {
  for (const char* p : kVaeFileLeftovers)
    if (vae_starts(name, p)) return true;
  return false;
}

}  // namespace

VaeFileInfo inspect_vae_file(const std::string& path_text) {
  fs::path path(path_text);
  LS_CHECK(fs::exists(path), path_text, ": VAE not found; check the path given as the VAE");
  VaeFileInfo info;
  fs::path config_json;
  if (fs::is_directory(path)) {
    if (is_diffusers_folder(path)) path /= kDiffusersVae;  // a pipeline: its VAE
    config_json = path / "config.json";
    LS_CHECK(fs::is_regular_file(config_json), path.string(), ": a folder without config.json is not a diffusers VAE; ",
             "give a VAE .safetensors file or a diffusers AutoencoderKL folder");
    info.files = diffusers_weight_files(path, "diffusion_pytorch_model");
  } else {
    info.files = {path};
    if (fs::is_regular_file(path.parent_path() / "config.json")) config_json = path.parent_path() / "config.json";
  }
  const VaeReaders probe = vae_open(info);
  const auto& first = probe.owned.front()->tensors();
  for (const char* p : kVaeFilePrefixes) {
    for (const auto& t : first)
      if (vae_starts(t.name, std::string(p) + "encoder.") || vae_starts(t.name, std::string(p) + "decoder.")) info.prefix = p;
    if (!info.prefix.empty()) break;
  }
  const VaeReaders r = vae_open(info);
  bool ldm = false, diffusers = false;
  for (const auto& t : r.all) {
    ldm |= vae_starts(t.name, "encoder.down.") || vae_starts(t.name, "encoder.mid.");
    diffusers |= vae_starts(t.name, "encoder.down_blocks.") || vae_starts(t.name, "encoder.mid_block.");
  }
  if (!ldm && !diffusers) {
    const CheckpointKind kind = detect_checkpoint_kind(first);
    LS_FAIL(path.string(), ": holds no VAE (no encoder.* / decoder.* tensors)",
            kind == CheckpointKind::kUnknown ? std::string() : "; it is " + describe(kind),
            "; give an SDXL VAE file (sdxl_vae.safetensors, or diffusers' diffusion_pytorch_model.safetensors)");
  }
  LS_CHECK(!(ldm && diffusers), path.string(), ": mixes ldm (encoder.down.*) and diffusers (encoder.down_blocks.*) names");
  info.naming = diffusers ? VaeNaming::kDiffusers : VaeNaming::kLdm;
  if (diffusers && !config_json.empty()) {
    const auto j = read_json_file(config_json);
    if (j.is_object() && j.value("_class_name", std::string()) == "AutoencoderKL") {
      info.config = vae_config_from_diffusers(j, config_json.string());
      return info;
    }
  }
  // No config: levels and blocks from the names, widths from the shapes.
  const std::string down = diffusers ? "encoder.down_blocks." : "encoder.down.";
  const int64_t levels = vae_max_index(r.all, down) + 1;
  const int64_t blocks = vae_max_index(r.all, down + "0." + (diffusers ? "resnets." : "block.")) + 1;
  LS_CHECK(levels > 0 && blocks > 0, path.string(), ": no encoder levels found; not an AutoencoderKL");
  VaeConfig shape_only;
  shape_only.ch_mult.assign(levels, 1);
  shape_only.num_res_blocks = blocks;
  const KeyMap map = diffusers_vae_map(shape_only);
  std::map<std::string, std::vector<int64_t>> ldm_shapes;
  for (const auto& t : r.all) {
    if (!diffusers) {
      ldm_shapes[t.name] = t.shape;
    } else if (const auto m = map.to_lorastudio(t.name)) {
      ldm_shapes[m->key] = to_lorastudio_shape(t.shape, m->transform);
    }
  }
  info.config = vae_config_from_shapes(ldm_shapes, levels, blocks, path.string());
  return info;
}

AutoencoderKL load_vae_file(const std::string& path, const SdxlConfig& model, c10::Device device, c10::ScalarType dtype,
                            VaeConfig& loaded) {
  VaeFileInfo info = inspect_vae_file(path);
  LS_CHECK(info.config.embed_dim == model.unet.in_channels, path, ": a VAE with ", info.config.embed_dim,
           " latent channels; the model's UNet takes ", model.unet.in_channels, " (this VAE is for another model family)");
  LS_CHECK(info.config.ch_mult.size() == model.vae.ch_mult.size(), path, ": a VAE that scales images down by ",
           info.config.downscale(), "; the model's VAE does by ", model.vae.downscale(), " (wrong VAE)");
  LS_CHECK(info.config.in_channels == model.vae.in_channels && info.config.out_channels == model.vae.out_channels, path,
           ": a VAE for ", info.config.in_channels, "-channel images; the model's has ", model.vae.in_channels);
  info.config.scale_factor = model.vae.scale_factor;
  AutoencoderKL vae{nullptr};
  {
    nn::SkipInitGuard skip_init;
    vae = AutoencoderKL(info.config);
  }
  vae->to(device, dtype);
  const VaeReaders r = vae_open(info);
  const KeyMap identity(std::vector<KeyRule>{{"encoder.", "encoder."}, {"decoder.", "decoder."}, {"quant_conv.", "quant_conv."},
                         {"post_quant_conv.", "post_quant_conv."}});
  const KeyMap map = info.naming == VaeNaming::kDiffusers ? diffusers_vae_map(info.config) : identity;
  const KeyMap prefixed = [&] {  // the files' names carry the prefix
    std::vector<KeyRule> rules;
    for (KeyRule rule : map.rules()) {
      rule.diffusers = info.prefix + rule.diffusers;
      rules.push_back(std::move(rule));
    }
    return KeyMap(std::move(rules));
  }();
  const std::string prefix = info.prefix;
  MappedLoad how{&prefixed, "", [prefix](const std::string& name) {
                   return !vae_starts(name, prefix) || vae_leftover(name.substr(prefix.size()));
                 }, {}};
  nn::LoadReport problems;
  load_mapped(r.view, *vae, how, problems);
  LS_CHECK(problems.empty(), path, ": does not match the VAE its shapes describe (", problems.summary(),
           "); check that the file is complete");
  vae->eval();
  loaded = info.config;
  return vae;
}

std::string vae_file_fingerprint(const std::string& path) {
  const VaeFileInfo info = inspect_vae_file(path);
  const VaeReaders r = vae_open(info);
  std::vector<KeyRule> rules;
  if (info.naming == VaeNaming::kDiffusers) {
    rules = diffusers_vae_map(info.config).rules();
  } else {
    rules = {{"encoder.", "encoder."}, {"decoder.", "decoder."}, {"quant_conv.", "quant_conv."},
             {"post_quant_conv.", "post_quant_conv."}};
  }
  for (auto& rule : rules) rule.diffusers = info.prefix + rule.diffusers;
  return fingerprint_entries(mapped_entries(r.view, KeyMap(std::move(rules)), "first_stage_model."));
}

}  // namespace ls::models
