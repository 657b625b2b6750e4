// The file hashes A1111 writes into infotexts: "Model hash" (AutoV2: first 10 hex of the SHA-256 of
// the whole file; modules/sd_models.py CheckpointInfo.calculate_shorthash) and "Lora hashes"
// (first 12 hex of the safetensors metadata's sshs_model_hash, else of the SHA-256 of the bytes after
// the 8-byte length and the JSON header; modules/hashes.py addnet_hash_safetensors and
// extensions-builtin/Lora/network.py NetworkOnDisk), with a JSON cache keyed by path, size and mtime.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace ls::a1111 {

/// SHA-256 of files, remembered in <cache_dir>/file_hashes.json as
/// {"format": 1, "files": {"/abs/path": {"size", "mtime_ns", "sha256"?, "addnet_sha256"?}}}.
/// An entry is used while the file keeps its size and mtime (as A1111's cache.json, which keys
/// on mtime alone): rewriting a file in place with the same size and an mtime set back is not
/// noticed. A missing, unreadable or malformed cache file is ignored and rebuilt, never an error.
/// Each update re-reads the file, merges and writes it through temp + rename, so concurrent
/// processes lose at most an entry (re-hashed next time), never the file.
class FileHashCache {
 public:
  /// cache_dir "" keeps results in memory only.
  explicit FileHashCache(std::filesystem::path cache_dir);

  /// Hex SHA-256 of the whole file.
  std::string sha256(const std::filesystem::path& file);
  /// Hex SHA-256 of a safetensors file's data section (A1111 addnet_hash_safetensors).
  std::string addnet_sha256(const std::filesystem::path& file);

  /// Files read and hashed by this object (cache misses).
  int files_hashed() const { return files_hashed_; }
  const std::filesystem::path& cache_file() const { return cache_file_; }

 private:
  struct Entry {
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    std::map<std::string, std::string> hashes;  // "sha256" / "addnet_sha256" -> hex
  };
  std::string lookup_or_hash(const std::filesystem::path& file, const std::string& kind);
  std::map<std::string, Entry> load() const;
  void store(const std::string& key, const Entry& entry);

  std::filesystem::path cache_file_;
  std::map<std::string, Entry> entries_;
  bool loaded_ = false;
  int files_hashed_ = 0;
};

/// Uncached hashes (what the cache stores).
std::string file_sha256(const std::filesystem::path& file);
std::string safetensors_addnet_sha256(const std::filesystem::path& file);

/// A1111's old model hash (before AutoV2; kohya's train_util.model_hash, its ss_sd_model_hash):
/// first 8 hex of the SHA-256 of the 64 KiB at offset 1 MiB (fewer bytes, or none, for a shorter
/// file). Cheap: no cache.
std::string legacy_model_hash(const std::filesystem::path& file);

/// SHA-256 identity of a model: a file's whole-file SHA-256; a folder's (a diffusers model or VAE:
/// A1111 has none) is the SHA-256 of "relative/path sha256" lines of its .safetensors and .json files
/// in path order, each file's from the cache.
std::string model_sha256(const std::filesystem::path& model, FileHashCache& cache);
/// A1111 "Model hash" of a checkpoint (or a diffusers folder, model_sha256): 10 hex.
std::string model_hash(const std::filesystem::path& checkpoint, FileHashCache& cache);
/// A1111 "VAE hash" (modules/sd_vae.py get_loaded_vae_hash): the first 10 hex of the VAE file's
/// SHA-256 (model_sha256 for a folder).
std::string vae_hash(const std::filesystem::path& vae, FileHashCache& cache);
/// A1111 "Lora hashes" value of a LoRA file: 12 hex. For .safetensors the metadata's
/// sshs_model_hash when present (kohya and lorastudio write the data-section SHA-256 there),
/// else the addnet hash; other files: the whole-file SHA-256.
std::string lora_hash(const std::filesystem::path& lora, FileHashCache& cache);

}  // namespace ls::a1111
