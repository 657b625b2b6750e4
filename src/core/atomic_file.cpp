#include "core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace ls::core {

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  temp_ = target_;
  temp_ += ".tmp." + std::to_string(::getpid());
  file_ = std::fopen(temp_.c_str(), "wb");
  LS_CHECK(file_ != nullptr, target_.string(), ": cannot create ", temp_.string(), " (",
           std::strerror(errno), "); check that the folder exists and is writable");
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temp_, ec);
  }
}

void AtomicFile::write(const void* data, size_t size) {
  if (size == 0) return;
  size_t n = std::fwrite(data, 1, size, file_);
  LS_CHECK(n == size, target_.string(), ": write failed (", std::strerror(errno),
           "); check free disk space");
}

void AtomicFile::commit() {
  LS_CHECK(std::fflush(file_) == 0, target_.string(), ": flush failed (", std::strerror(errno), ")");
  ::fsync(::fileno(file_));
  std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  std::filesystem::rename(temp_, target_, ec);
  LS_CHECK(!ec, target_.string(), ": cannot rename ", temp_.string(), " onto it (", ec.message(), ")");
  committed_ = true;
}

void write_file_atomic(const std::filesystem::path& path, const std::string& content) {
  AtomicFile file(path);
  file.write(content.data(), content.size());
  file.commit();
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  LS_CHECK(in.good(), path.string(), ": cannot open for reading; check the path");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace ls::core
