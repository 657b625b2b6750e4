// Outputs are written to "<path>.tmp.<pid>" and renamed over the target only when complete,
// so an interrupted write never leaves a half file where a good one was.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>

namespace ls::core {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();  // removes the temp file unless commit() ran
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::FILE* handle() { return file_; }
  void write(const void* data, size_t size);
  /// Flushes, fsyncs and renames the temp file onto the target.
  void commit();
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

/// Writes a whole string atomically.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);
std::string read_file(const std::filesystem::path& path);

}  // namespace ls::core
