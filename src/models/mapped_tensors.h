// Reading a part whose file names are not lorastudio's (a diffusers folder's part, a separate VAE
// file) through a KeyMap: one tensor in memory at a time, every problem collected in one report,
// and a fingerprint of the part in lorastudio's names so the same weights give the same cache key
// whichever layout they come in.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors_header.h"
#include "models/key_map_diffusers.h"

namespace torch::nn {
class Module;
}
namespace ls::io {
class SafetensorsReader;
}
namespace ls::nn {
struct LoadReport;
}

namespace ls::models {

struct MappedLoad {
  const KeyMap* map = nullptr;      // file name -> module name
  std::string label;                // put before file names in the report ("unet/")
  std::function<bool(const std::string&)> ignore;  // file names that carry nothing the module needs
  std::set<std::string> optional;   // module names the files may lack (kept as initialised)
};

/// Copies every mapped tensor of the files into the module (converted to its dtype and device).
/// Names the map does not know are unexpected; module tensors no file filled are missing (listed
/// under their file-side names).
void load_mapped(const std::vector<const io::SafetensorsReader*>& files, torch::nn::Module& module,
                 const MappedLoad& how, nn::LoadReport& report);

/// One tensor as a fingerprint sees it: lorastudio's name (with the single-file prefix) and shape.
struct FingerprintEntry {
  std::string name;
  io::Dtype dtype;
  std::vector<int64_t> shape;
  const io::SafetensorsReader* file;
  const io::TensorInfo* info;
};

/// SHA-256 over the entries in name order (names, dtypes, shapes, bytes): a file's tensor order
/// and naming do not change it. Pages are released after hashing.
std::string fingerprint_entries(std::vector<FingerprintEntry> entries);

/// The entries of the files under a map; prefix goes before each lorastudio name.
std::vector<FingerprintEntry> mapped_entries(const std::vector<const io::SafetensorsReader*>& files, const KeyMap& map,
                                             const std::string& prefix,
                                             const std::function<bool(const std::string&)>& ignore = {});

}  // namespace ls::models
