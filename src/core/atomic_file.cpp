#include "core/atomic_file.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/error.h"

namespace ls::core {

std::string write_error_advice(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT: return "free disk space (or raise the quota) and run again";
    case EFBIG: return "the file is larger than this process may write (ulimit -f) or the filesystem allows";
    case EROFS: return "the filesystem is read-only; write elsewhere or remount it read-write";
    case EACCES:
    case EPERM: return "check that the folder is writable by this user";
    case ENOENT: return "check that the folder exists";
    default: return "check the disk and the folder";
  }
}

std::string write_error_message(const std::filesystem::path& path, const std::string& what, int err) {
  return str_cat(path.string(), ": ", what, " (", std::strerror(err), "); ", write_error_advice(err));
}

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  temp_ = target_;
  temp_ += ".tmp." + std::to_string(::getpid());
  file_ = std::fopen(temp_.c_str(), "wb");
  if (file_ == nullptr) fail(("cannot create " + temp_.string()).c_str(), errno);
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temp_, ec);
  }
}

// Closes and removes the temp file before throwing, so nothing is left whatever the caller does
// with the exception; the target was never touched.
void AtomicFile::fail(const char* what, int err) {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  std::filesystem::remove(temp_, ec);
  LS_FAIL(write_error_message(target_, what, err),
          std::filesystem::exists(target_, ec) ? "; the previous file is unchanged" : "; nothing was written");
}

void AtomicFile::write(const void* data, size_t size) {
  if (size == 0) return;
  LS_CHECK(file_ != nullptr, target_.string(), ": write after a failed or committed write");
  errno = 0;
  const size_t n = std::fwrite(data, 1, size, file_);
  if (n != size) fail("cannot write", errno ? errno : EIO);
}

// A full disk often shows only here: stdio buffers small files entirely, and some filesystems
// (NFS, quotas, delayed allocation) report the error at fsync or close.
void AtomicFile::commit() {
  LS_CHECK(file_ != nullptr, target_.string(), ": commit after a failed or committed write");
  if (std::fflush(file_) != 0 || std::ferror(file_)) fail("cannot write", errno ? errno : EIO);
  if (::fsync(::fileno(file_)) != 0 && errno != EINVAL) fail("cannot sync to disk", errno);
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) fail("cannot close", errno ? errno : EIO);
  std::error_code ec;
  std::filesystem::rename(temp_, target_, ec);
  if (ec) fail(("cannot rename " + temp_.string() + " onto it").c_str(), ec.value());
  committed_ = true;
}

void write_file_atomic(const std::filesystem::path& path, const std::string& content) {
  AtomicFile file(path);
  file.write(content.data(), content.size());
  file.commit();
}

namespace {

struct InterruptedWrite {
  std::string target;  // the name the write was for
  bool old = false;    // a state folder swapped out (".old-"), not a temp
  long pid = 0;
};

// "<target>.tmp.<pid>", "<target>.tmp-<pid>" or "<target>.old-<pid>"; none for any other name.
std::optional<InterruptedWrite> interrupted_write_of(const std::string& name) {
  for (const char* mark : {".tmp.", ".tmp-", ".old-"}) {
    const size_t at = name.rfind(mark);
    if (at == std::string::npos || at == 0) continue;
    const std::string digits = name.substr(at + 5);
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    return InterruptedWrite{name.substr(0, at), mark[1] == 'o', std::stol(digits)};
  }
  return std::nullopt;
}

// EPERM: the pid is someone else's live process. A pid reused since only keeps a temp for longer.
bool writer_running(long pid) {
  return pid == static_cast<long>(::getpid()) || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

std::vector<std::filesystem::path> clean_interrupted_writes(const std::filesystem::path& dir, bool recursive) {
  namespace fs = std::filesystem;
  std::vector<fs::path> found;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return found;
  std::vector<fs::path> subdirs;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto w = interrupted_write_of(it->path().filename().string());
    if (!w) {
      const bool hidden = it->path().filename().string().rfind('.', 0) == 0;  // .git, another tool's state
      if (recursive && !hidden && it->is_directory(ec) && !it->is_symlink(ec)) subdirs.push_back(it->path());
      continue;
    }
    if (writer_running(w->pid)) continue;
    found.push_back(it->path());
  }
  std::error_code ignored;
  for (const fs::path& p : found) {
    const auto w = interrupted_write_of(p.filename().string());
    const fs::path target = p.parent_path() / w->target;
    if (w->old && !fs::exists(target, ignored)) fs::rename(p, target, ignored);  // the previous state, whole
    else fs::remove_all(p, ignored);
  }
  for (const fs::path& sub : subdirs) {
    const auto more = clean_interrupted_writes(sub, true);
    found.insert(found.end(), more.begin(), more.end());
  }
  return found;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  LS_CHECK(in.good(), path.string(), ": cannot open for reading; check the path");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace ls::core
