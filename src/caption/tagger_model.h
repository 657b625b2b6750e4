// A WD14 tagger's network loaded from a model folder laid out like the hub snapshot
// (SmilingWolf/wd-*-tagger-v3: config.json, model.safetensors, selected_tags.csv; the ONNX export
// beside them is not read).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "caption/tagger_config.h"
#include "caption/tagger_net.h"

namespace ls::caption {

struct TaggerModel {
  std::filesystem::path dir;
  TaggerConfig config;
  std::shared_ptr<TaggerNet> net;  // eval mode, on device in dtype
};

/// The untrained network for a config (parameters uninitialised under nn::SkipInitGuard).
std::shared_ptr<TaggerNet> make_tagger_net(const TaggerConfig& config);

/// Reads DIR/config.json and DIR/model.safetensors. One-line errors: a missing folder or file
/// (a folder with only model.onnx is told which file to fetch), an unsupported architecture, or
/// every missing / mis-shaped / unexpected tensor at once.
TaggerModel load_tagger_model(const std::filesystem::path& dir, c10::Device device, c10::ScalarType dtype);

/// The folder's file `name`, or an error that says what a tagger folder holds.
std::filesystem::path tagger_file(const std::filesystem::path& dir, const std::string& name);

}  // namespace ls::caption
