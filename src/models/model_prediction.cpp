#include "models/model_prediction.h"

#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/diffusers_config.h"
#include "models/diffusers_folder.h"

namespace fs = std::filesystem;

namespace ls::models {

ModelPrediction detect_prediction(const std::string& model_path) {
  ModelPrediction p;
  if (is_diffusers_folder(model_path)) {
    const fs::path scheduler = fs::path(model_path) / "scheduler" / "scheduler_config.json";
    std::error_code ec;
    if (!fs::is_regular_file(scheduler, ec)) return p;
    const nlohmann::json j = read_json_file(scheduler);
    p.v = j.value("prediction_type", std::string("epsilon")) == "v_prediction";
    p.zero_terminal_snr = j.value("rescale_betas_zero_snr", false);
    return p;
  }
  const io::SafetensorsReader reader(model_path);
  const auto& meta = reader.metadata();
  const auto spec = meta.find("modelspec.prediction_type");
  p.v = reader.contains("v_pred") || (spec != meta.end() && spec->second == "v");
  p.zero_terminal_snr = reader.contains("ztsnr");
  return p;
}

void check_prediction_choice(const std::string& choice) {
  LS_CHECK(choice == "auto" || choice == "epsilon" || choice == "v" || choice == "v_zsnr" || choice == "epsilon_zsnr",
           "prediction '", choice, "' is not one of auto, epsilon, v, v_zsnr");
}

ModelPrediction resolve_prediction(const std::string& choice, const std::string& model_path) {
  check_prediction_choice(choice);
  if (choice == "auto") return detect_prediction(model_path);
  if (choice == "epsilon") return {false, false};
  if (choice == "v") return {true, false};
  if (choice == "v_zsnr") return {true, true};
  if (choice == "epsilon_zsnr") return {false, true};
  LS_FAIL("prediction '", choice, "' is not one of auto, epsilon, v, v_zsnr");
}

std::string prediction_name(const ModelPrediction& p) {
  if (p.v) return p.zero_terminal_snr ? "v_zsnr" : "v";
  return p.zero_terminal_snr ? "epsilon_zsnr" : "epsilon";
}

}  // namespace ls::models
