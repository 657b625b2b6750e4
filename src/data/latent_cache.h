// Disk caches of encoder outputs: VAE latents per image and text-encoder outputs per caption,
// one safetensors file per key. A key is the SHA-256 of everything the output depends on (the
// image's content hash, bucket, resize and crop; the caption text; the model's identity), so
// editing an image or swapping the model misses exactly the entries it changed and nothing else.
// kohya caches to <image>.npz / <image>_te_outputs.npz and checks only the latent shape.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "data/dataset.h"

namespace ls::data {

using TensorMap = std::map<std::string, torch::Tensor>;

/// <dir>/<key>.safetensors files; written atomically, so an interrupted fill loses nothing.
class TensorCache {
 public:
  explicit TensorCache(std::string dir);
  std::string path_for(const std::string& key) const;
  bool contains(const std::string& key) const;
  TensorMap load(const std::string& key) const;
  void store(const std::string& key, const TensorMap& tensors, const std::map<std::string, std::string>& metadata) const;
  /// Removes the temps of a fill killed mid-write. Only where one process fills the folder: a rank
  /// on another machine sharing it has a pid this machine cannot see.
  void clean_interrupted_writes() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

struct CacheStats {
  int64_t hits = 0;
  int64_t encoded = 0;
  int64_t others = 0;  // missing entries another rank encodes (CacheShard)
};

/// The entries one of several processes filling one cache folder encodes: those whose key, read
/// as a number, is `index` modulo `count`. The shares are disjoint and fixed by the keys alone, so
/// no two ranks ever write one entry, whatever each found already cached.
struct CacheShard {
  int index = 0, count = 1;
  bool owns(const std::string& key) const;
};

/// pixels [B,3,H,W] float32 in [-1,1], and one noise id per image -> latents [B,C,H/8,W/8] (already
/// scaled as the trainer wants them); the caller owns the model, device and dtype. The encoder
/// samples the VAE's posterior with latent_noise(mean, seed, noise_ids): each entry's noise is its
/// own, so which images a fill encodes together, on which rank, or whether a fill cut short (kill,
/// full disk) is finished by a later run never changes an entry.
using ImageEncoder = std::function<torch::Tensor(const torch::Tensor& pixels, const std::vector<uint64_t>& noise_ids)>;

/// Standard normal noise shaped like `mean` [B,...] on its device and dtype, image b drawn on the
/// CPU from its own generator seeded with derive_seed(seed, {noise_ids[b]}) (the same numbers on
/// every device).
torch::Tensor latent_noise(const torch::Tensor& mean, uint64_t seed, const std::vector<uint64_t>& noise_ids);

/// <folder>/.lorastudio-cache for a training folder, <toml's folder>/.lorastudio-cache for a TOML:
/// where `dataset cache` and `train` keep their caches.
std::string default_cache_dir(const std::string& dataset_path);

/// The model id of an SDXL VAE for LatentCache: `dataset cache` and `train` share entries.
std::string vae_cache_id(const std::string& vae_sha256, const std::string& dtype_name);

struct CachedLatents {
  torch::Tensor latents;  // [C,h,w]
  torch::Tensor mask;     // [1,H,W] or undefined
};

class LatentCache {
 public:
  /// `model_id` identifies the encoder's weights (e.g. a hash of the VAE tensors) and dtype.
  LatentCache(std::string dir, std::string model_id);
  std::string key(const ImageRecord& record, const SubsetConfig& subset) const;
  /// Encodes the used images (num_repeats > 0) whose latents are missing, `batch_size` images of
  /// one bucket at a time; with flip_aug the mirrored image is encoded too, as kohya does.
  CacheStats fill(const std::vector<DatasetIndex>& datasets, const ImageEncoder& encoder, int batch_size,
                  bool show_progress = true, const CacheShard& shard = {}) const;
  /// [C,h,w] float32 on the CPU.
  torch::Tensor load(const ImageRecord& record, const SubsetConfig& subset, bool flipped) const;
  /// The latents and, for an image with a loss mask, its mask [1,H,W] (flipped with the latents).
  CachedLatents load_entry(const ImageRecord& record, const SubsetConfig& subset, bool flipped) const;

 private:
  std::string latent_source(const ImageRecord& record, const SubsetConfig& subset) const;

  TensorCache files_;
  std::string model_id_;
};

/// Refuses latent caching when an image's pixels change between epochs (random_crop), naming the
/// subset and the way out; kohya refuses the same combination.
void require_latent_cacheable(const DataConfig& config);
/// Refuses text-encoder caching when captions change between epochs (shuffle, dropouts).
void require_text_cacheable(const DataConfig& config);

/// captions -> one TensorMap per caption (e.g. context [L,2048] and pooled [1280]).
using TextEncoder = std::function<std::vector<TensorMap>(const std::vector<std::string>& captions)>;

class TextCache {
 public:
  TextCache(std::string dir, std::string model_id);
  std::string key(const std::string& caption) const;
  CacheStats fill(const std::vector<std::string>& captions, const TextEncoder& encoder, int batch_size,
                  bool show_progress = true, const CacheShard& shard = {}) const;
  TensorMap load(const std::string& caption) const;

 private:
  TensorCache files_;
  std::string model_id_;
};

/// The distinct captions the text cache must hold: each used image's caption after the static
/// processing (prefix/suffix, separators). Requires require_text_cacheable.
std::vector<std::string> static_captions(const std::vector<DatasetIndex>& datasets);

}  // namespace ls::data
