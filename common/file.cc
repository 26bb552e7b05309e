#include "common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace rcptguard {
namespace {

std::string Subject(std::string_view what, const std::string& path) {
  return absl::StrCat(ToAbsl(what), " ", path);
}

// "is a FIFO, not a regular file" and the like.
const char* NotRegular(mode_t mode) {
  if (S_ISDIR(mode)) return "is a directory, not a regular file";
  if (S_ISFIFO(mode)) return "is a FIFO, not a regular file";
  if (S_ISCHR(mode)) return "is a character device, not a regular file";
  if (S_ISBLK(mode)) return "is a block device, not a regular file";
  if (S_ISSOCK(mode)) return "is a socket, not a regular file";
  return "is not a regular file";
}

absl::Status TooLarge(std::string_view what, const std::string& path,
                      uint64_t size, uint64_t max_bytes) {
  return absl::InvalidArgumentError(
      absl::StrCat(Subject(what, path), ": file has ", size,
                   " bytes, more than the ", max_bytes, " allowed"));
}

}  // namespace

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

int UniqueFd::Close() {
  const int fd = std::exchange(fd_, -1);
  return fd >= 0 && ::close(fd) != 0 ? errno : 0;
}

absl::StatusOr<OpenedFile> OpenRegularFile(std::string_view what,
                                           const std::string& path,
                                           uint64_t max_bytes) {
  OpenedFile file;
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat(Subject(what, path), ": cannot open"));
  }
  file.fd.Reset(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat(Subject(what, path), ": cannot stat"));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Subject(what, path), ": ", NotRegular(st.st_mode)));
  }
  file.size = static_cast<uint64_t>(st.st_size);
  if (file.size > max_bytes) {
    return TooLarge(what, path, file.size, max_bytes);
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat(Subject(what, path), ": cannot clear O_NONBLOCK"));
  }
  return file;
}

absl::StatusOr<std::string> ReadRegularFile(std::string_view what,
                                            const std::string& path,
                                            uint64_t max_bytes) {
  absl::StatusOr<OpenedFile> file = OpenRegularFile(what, path, max_bytes);
  if (!file.ok()) return file.status();
  // One byte more than allowed tells a file that grew from one that did not.
  const uint64_t limit = max_bytes + 1;
  std::string content;
  content.resize(
      static_cast<size_t>(std::min<uint64_t>(file->size + 1, limit)));
  size_t have = 0;
  while (true) {
    if (have == content.size()) {
      if (content.size() >= limit) break;
      content.resize(static_cast<size_t>(std::min<uint64_t>(
          limit, std::max<uint64_t>(2 * content.size(), 4096))));
    }
    const ssize_t n =
        ::read(file->fd.get(), content.data() + have, content.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(
          errno, absl::StrCat(Subject(what, path), ": cannot read"));
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  if (have > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(Subject(what, path), ": file grew past the ", max_bytes,
                     " bytes allowed while being read"));
  }
  content.resize(have);
  return content;
}

FileStreamBuf::FileStreamBuf(OpenedFile file, uint64_t max_bytes)
    : file_(std::move(file)), max_bytes_(max_bytes) {
  setg(buffer_, buffer_, buffer_);
}

FileStreamBuf::int_type FileStreamBuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  if (exceeded_ || error_ != 0) return traits_type::eof();
  // Ask for one byte past the bound so that growth is noticed.
  const uint64_t left = max_bytes_ - served_;
  const size_t want =
      left >= kBufferBytes ? kBufferBytes : static_cast<size_t>(left) + 1;
  ssize_t n;
  do {
    n = ::read(file_.fd.get(), buffer_, want);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    error_ = errno;
    return traits_type::eof();
  }
  if (n == 0) return traits_type::eof();
  uint64_t got = static_cast<uint64_t>(n);
  if (served_ + got > max_bytes_) {
    exceeded_ = true;
    got = max_bytes_ - served_;
    if (got == 0) return traits_type::eof();
  }
  served_ += got;
  setg(buffer_, buffer_, buffer_ + got);
  return traits_type::to_int_type(*gptr());
}

}  // namespace rcptguard
