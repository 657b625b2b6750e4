// A1111 model/LoRA hashes with a size+mtime keyed JSON cache (core::Sha256 reads ~145 MiB/s here,
// so a 7 GB checkpoint takes ~50 s; the cache makes every later image free). Refs: file_hashes.h.
#include "a1111/file_hashes.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/sha256.h"
#include "core/strings.h"
#include "io/safetensors_header.h"

namespace ls::a1111 {
namespace file_hashes_detail {

namespace fs = std::filesystem;
constexpr int kCacheFormat = 1;
constexpr size_t kReadBlock = 1 << 20;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

FilePtr open_for_hash(const fs::path& file) {
  FilePtr f(std::fopen(file.c_str(), "rb"));
  LS_CHECK(f != nullptr, file.string(), ": cannot open for hashing (", std::strerror(errno), "); check the path");
  return f;
}

/// SHA-256 of the bytes from `offset` to the end.
std::string hash_from(const fs::path& file, uint64_t offset) {
  FilePtr f = open_for_hash(file);
  LS_CHECK(std::fseek(f.get(), static_cast<long>(offset), SEEK_SET) == 0, file.string(), ": cannot seek to byte ",
           offset, " (", std::strerror(errno), ")");
  core::Sha256 h;
  std::vector<char> block(kReadBlock);
  size_t n;
  while ((n = std::fread(block.data(), 1, block.size(), f.get())) > 0) h.update(block.data(), n);
  LS_CHECK(!std::ferror(f.get()), file.string(), ": read error while hashing (", std::strerror(errno), ")");
  return h.hex_digest();
}

/// The 8-byte little-endian header length and the header text of a safetensors file, checked
/// against the file size.
std::pair<uint64_t, std::string> safetensors_header(const fs::path& file) {
  FilePtr f = open_for_hash(file);
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  LS_CHECK(!ec, file.string(), ": cannot read the file size (", ec.message(), ")");
  unsigned char len_bytes[8];
  LS_CHECK(size >= 8 && std::fread(len_bytes, 1, 8, f.get()) == 8, file.string(),
           ": shorter than a safetensors header (", size, " bytes); the file is damaged or not safetensors");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | len_bytes[i];
  LS_CHECK(n <= io::kMaxHeaderSize && n <= size - 8, file.string(), ": safetensors header length ", n,
           " does not fit the file (", size, " bytes); the file is truncated or not safetensors");
  std::string header(n, '\0');
  LS_CHECK(std::fread(header.data(), 1, n, f.get()) == n, file.string(), ": cannot read the safetensors header");
  return {n, std::move(header)};
}

struct Stat {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const Stat& o) const { return size == o.size && mtime_ns == o.mtime_ns; }
};

Stat stat_file(const fs::path& file) {
  std::error_code ec;
  Stat s;
  s.size = fs::file_size(file, ec);
  LS_CHECK(!ec, file.string(), ": cannot read the file size (", ec.message(), "); check the path");
  auto t = fs::last_write_time(file, ec);
  LS_CHECK(!ec, file.string(), ": cannot read the modification time (", ec.message(), ")");
  s.mtime_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return s;
}

std::string key_of(const fs::path& file) { return fs::absolute(file).lexically_normal().string(); }

bool has_safetensors_extension(const fs::path& file) {
  return core::ascii_lower(file.extension().string()) == ".safetensors";
}

}  // namespace file_hashes_detail

std::string file_sha256(const std::filesystem::path& file) { return file_hashes_detail::hash_from(file, 0); }

std::string legacy_model_hash(const std::filesystem::path& file) {
  using namespace file_hashes_detail;
  FilePtr f = open_for_hash(file);
  std::vector<char> block(0x10000);
  size_t n = 0;
  if (std::fseek(f.get(), 0x100000, SEEK_SET) == 0) n = std::fread(block.data(), 1, block.size(), f.get());
  LS_CHECK(!std::ferror(f.get()), file.string(), ": read error while hashing (", std::strerror(errno), ")");
  return core::sha256_hex(std::string_view(block.data(), n)).substr(0, 8);
}

std::string safetensors_addnet_sha256(const std::filesystem::path& file) {
  using namespace file_hashes_detail;
  return hash_from(file, 8 + safetensors_header(file).first);
}

FileHashCache::FileHashCache(std::filesystem::path cache_dir)
    : cache_file_(cache_dir.empty() ? std::filesystem::path() : cache_dir / "file_hashes.json") {}

std::map<std::string, FileHashCache::Entry> FileHashCache::load() const {
  using file_hashes_detail::kCacheFormat;
  std::map<std::string, Entry> entries;
  std::error_code ec;
  if (cache_file_.empty() || !std::filesystem::exists(cache_file_, ec)) return entries;
  try {  // any problem with the cache means "no cache": it is rebuilt by the next store()
    const nlohmann::json j = nlohmann::json::parse(core::read_file(cache_file_));
    if (j.at("format").get<int>() != kCacheFormat) return {};
    for (const auto& [path, e] : j.at("files").items()) {
      Entry entry;
      entry.size = e.at("size").get<uint64_t>();
      entry.mtime_ns = e.at("mtime_ns").get<int64_t>();
      for (const char* kind : {"sha256", "addnet_sha256"})
        if (e.contains(kind)) entry.hashes[kind] = e.at(kind).get<std::string>();
      entries[path] = std::move(entry);
    }
  } catch (const std::exception&) {
    return {};
  }
  return entries;
}

void FileHashCache::store(const std::string& key, const Entry& entry) {
  using file_hashes_detail::kCacheFormat;
  entries_[key] = entry;
  if (cache_file_.empty()) return;
  std::map<std::string, Entry> on_disk = load();  // another process may have added entries
  on_disk[key] = entry;
  nlohmann::json files = nlohmann::json::object();
  for (const auto& [path, e] : on_disk) {
    nlohmann::json je = {{"size", e.size}, {"mtime_ns", e.mtime_ns}};
    for (const auto& [kind, hex] : e.hashes) je[kind] = hex;
    files[path] = std::move(je);
  }
  std::error_code ec;
  std::filesystem::create_directories(cache_file_.parent_path(), ec);
  LS_CHECK(!ec, cache_file_.parent_path().string(), ": cannot create the cache folder (", ec.message(),
           "); choose a writable cache dir");
  core::write_file_atomic(cache_file_, nlohmann::json{{"format", kCacheFormat}, {"files", files}}.dump(1) + "\n");
}

std::string FileHashCache::lookup_or_hash(const std::filesystem::path& file, const std::string& kind) {
  using namespace file_hashes_detail;
  if (!loaded_) {
    entries_ = load();
    loaded_ = true;
  }
  const std::string key = key_of(file);
  const Stat before = stat_file(file);
  Entry entry;
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.size == before.size && it->second.mtime_ns == before.mtime_ns) {
    auto hit = it->second.hashes.find(kind);
    if (hit != it->second.hashes.end()) return hit->second;
    entry = it->second;  // same file, the other kind of hash is cached: keep it
  }
  entry.size = before.size;
  entry.mtime_ns = before.mtime_ns;
  const std::string hex = kind == "sha256" ? file_sha256(file) : safetensors_addnet_sha256(file);
  ++files_hashed_;
  entry.hashes[kind] = hex;
  // A file written to while it was read gets a hash of neither version: do not remember it.
  if (stat_file(file) == before) store(key, entry);
  return hex;
}

std::string FileHashCache::sha256(const std::filesystem::path& file) { return lookup_or_hash(file, "sha256"); }

std::string FileHashCache::addnet_sha256(const std::filesystem::path& file) { return lookup_or_hash(file, "addnet_sha256"); }

std::string model_sha256(const std::filesystem::path& model, FileHashCache& cache) {
  if (!std::filesystem::is_directory(model)) return cache.sha256(model);
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(model)) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_regular_file() && (ext == ".safetensors" || ext == ".json")) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::string lines;
  for (const auto& f : files) lines += f.lexically_relative(model).string() + " " + cache.sha256(f) + "\n";
  return core::sha256_hex(lines);
}

std::string model_hash(const std::filesystem::path& checkpoint, FileHashCache& cache) {
  return model_sha256(checkpoint, cache).substr(0, 10);
}

std::string vae_hash(const std::filesystem::path& vae, FileHashCache& cache) {
  return model_sha256(vae, cache).substr(0, 10);
}

std::string lora_hash(const std::filesystem::path& lora, FileHashCache& cache) {
  using namespace file_hashes_detail;
  if (!has_safetensors_extension(lora)) return cache.sha256(lora).substr(0, 12);
  auto [header_size, header] = safetensors_header(lora);
  const uint64_t data_size = std::filesystem::file_size(lora) - 8 - header_size;
  const io::Header parsed = io::parse_header(header, data_size, lora.string());
  auto it = parsed.metadata.find("sshs_model_hash");
  if (it != parsed.metadata.end() && !it->second.empty()) return it->second.substr(0, 12);
  return cache.addnet_sha256(lora).substr(0, 12);
}

}  // namespace ls::a1111
