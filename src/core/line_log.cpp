#include "core/line_log.h"

#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

#include "core/atomic_file.h"
#include "core/error.h"

namespace ls::core {
namespace {

// The descriptor appends go to; `size` receives the length, `torn` whether the last byte is not '\n'.
int open_for_append(const std::filesystem::path& path, off_t& size, bool& torn) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size = ::lseek(fd, 0, SEEK_END);
  char last = '\n';
  torn = size > 0 && ::pread(fd, &last, 1, size - 1) == 1 && last != '\n';
  return fd;
}

// Writes all of `text` in one call (a regular file takes it whole unless the disk fills); errno or 0.
int write_whole(int fd, const std::string& text, off_t size_before) {
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = n < 0 ? errno : n != static_cast<ssize_t>(text.size()) ? ENOSPC : 0;
  if (err != 0) (void)!::ftruncate(fd, size_before);
  return err;
}

}  // namespace

int append_line(const std::filesystem::path& path, const std::string& line, bool sync, off_t& size_before) {
  bool torn = false;
  size_before = -1;
  const int fd = open_for_append(path, size_before, torn);
  if (fd < 0) return errno;
  int err = write_whole(fd, (torn ? "\n" : "") + line + "\n", size_before);
  if (err == 0 && sync && ::fsync(fd) != 0) {
    err = errno;
    (void)!::ftruncate(fd, size_before);
  }
  ::close(fd);
  if (err != 0 && size_before == 0) ::unlink(path.c_str());  // a file this append created: gone again
  return err;
}

LineLog::LineLog(std::filesystem::path path) : path_(std::move(path)) {
  off_t size = 0;
  bool torn = false;
  fd_ = open_for_append(path_, size, torn);
  if (fd_ < 0) LS_FAIL(write_error_message(path_, "cannot open the log for appending", errno));
  if (torn) {
    if (const int err = write_whole(fd_, "\n", size); err != 0) {
      ::close(fd_);
      LS_FAIL(write_error_message(path_, "cannot end the line a killed run left unfinished", err));
    }
  }
}

LineLog::~LineLog() {
  if (fd_ >= 0) ::close(fd_);
}

void LineLog::append(const std::string& line) {
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  if (const int err = write_whole(fd_, line + "\n", size); err != 0)
    LS_FAIL(write_error_message(path_, "cannot append to the log", err));
}

}  // namespace ls::core
