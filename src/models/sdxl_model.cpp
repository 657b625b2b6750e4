#include "models/sdxl_model.h"

#include "core/atomic_file.h"
#include "core/error.h"

namespace ls::models {

namespace {
constexpr int64_t kSizeEmbedDim = 256;  // SGM's ConcatTimestepEmbedderND outdim
}

SdxlConfig SdxlConfig::tiny() {
  SdxlConfig c;
  c.unet = SdxlUnetConfig::tiny();
  c.te1 = ClipTextConfig::tiny_te1();
  c.te2 = ClipTextConfig::tiny_te2();
  c.vae = VaeConfig::tiny();
  c.unet.context_dim = c.te1.width + c.te2.width;  // the UNet preset alone does not know the encoders
  return c;
}

void SdxlConfig::validate(const std::string& label) const {
  LS_CHECK(unet.context_dim == te1.width + te2.width, label, ": unet.context_dim ", unet.context_dim,
           " must equal te1.width + te2.width = ", te1.width + te2.width, "; fix the config");
  int64_t pooled = te2.projection_dim > 0 ? te2.projection_dim : te2.width;
  LS_CHECK(unet.adm_in_channels == pooled + 6 * kSizeEmbedDim, label, ": unet.adm_in_channels ",
           unet.adm_in_channels, " must equal te2 pooled size + 6 x 256 = ", pooled + 6 * kSizeEmbedDim,
           "; fix the config");
  LS_CHECK(unet.in_channels == vae.embed_dim && unet.out_channels == vae.embed_dim, label,
           ": unet in/out channels must equal vae.embed_dim (", vae.embed_dim, "); fix the config");
}

void to_json(nlohmann::json& j, const SdxlConfig& c) {
  j = nlohmann::json{{"unet", c.unet}, {"te1", c.te1}, {"te2", c.te2}, {"vae", c.vae}};
}

void from_json(const nlohmann::json& j, SdxlConfig& c) {
  LS_CHECK(j.is_object(), "model config must be a JSON object with unet, te1, te2, vae");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "unet") it.value().get_to(c.unet);
    else if (key == "te1") it.value().get_to(c.te1);
    else if (key == "te2") it.value().get_to(c.te2);
    else if (key == "vae") it.value().get_to(c.vae);
    else LS_FAIL("model config: unknown part '", key, "'; expected unet, te1, te2 or vae");
  }
}

SdxlConfig load_config_file(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(core::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    LS_FAIL(path, ": not valid JSON (", e.what(), "); fix the config file");
  }
  SdxlConfig config;
  try {
    from_json(j, config);
  } catch (const ls::Error& e) {
    LS_FAIL(path, ": ", e.what());
  } catch (const nlohmann::json::exception& e) {
    LS_FAIL(path, ": ", e.what(), "; fix the config file");
  }
  config.validate(path);
  return config;
}

SdxlModel SdxlModel::create(const SdxlConfig& config, Components parts) {
  SdxlModel m;
  m.config = config;
  if (parts.unet) m.unet = SdxlUnet(config.unet);
  if (parts.text) {
    m.te1 = ClipTextModel(config.te1);
    m.te2 = ClipTextModel(config.te2);
  }
  if (parts.vae) m.vae = AutoencoderKL(config.vae);
  return m;
}

void SdxlModel::to(c10::Device device, c10::ScalarType dtype) {
  if (unet) unet->to(device, dtype);
  if (te1) te1->to(device, dtype);
  if (te2) te2->to(device, dtype);
  if (vae) vae->to(device, dtype);
}

}  // namespace ls::models
