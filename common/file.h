// Reading files that come from outside the process (config, keys, PEM,
// LDIF, snapshots) without letting the file decide how long we block or how
// much we allocate.
//
// A path in a config can name anything: a FIFO (open(2) blocks until a
// writer appears, forever), /dev/zero or /dev/urandom (reads never end), a
// directory, or a sparse file of terabytes. Every reader of such a path goes
// through OpenRegularFile, which
//   - opens with O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, so opening a
//     FIFO or a device returns at once,
//   - fstat(2)s the descriptor (not the path: no race with a rename) and
//     refuses anything but a regular file, naming what it found,
//   - refuses a file larger than the caller's bound before reading a byte,
//   - then clears O_NONBLOCK, so reads behave as usual.
// ReadRegularFile reads the whole file on top of that, at most max_bytes + 1
// bytes, so a file that grows while it is read is refused too.
//
//   RG_ASSIGN_OR_RETURN(std::string text,
//                       ReadRegularFile("config file", path, kMaxConfigBytes));
//
// Every error names the file as "<what> <path>: ...", e.g.
//   "config file /etc/rcptguard/c.textproto: is a FIFO, not a regular file"
//   "snapshot /srv/dir.rgs: cannot open: No such file or directory"
// Codes: the errno mapping (NotFound, PermissionDenied, ...) when open(2),
// fstat(2) or read(2) fail; InvalidArgument for something that is not a
// regular file and for a file above its bound.
//
// Thread safety: thread-safe (no shared state). A UniqueFd is a value owned
// by one thread at a time.
#ifndef RCPTGUARD_COMMON_FILE_H_
#define RCPTGUARD_COMMON_FILE_H_

#include <cstdint>
#include <streambuf>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"

namespace rcptguard {

// Bounds for the files we read whole. Named here so that each is stated once
// and documented in docs/security.md ("Files and configuration values").
inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline constexpr uint64_t kGiB = uint64_t{1} << 30;
// rcptguardd's text-format config and rcptguard-postfix's name = value file.
inline constexpr uint64_t kMaxConfigFileBytes = 16 * kMiB;
// Fingerprint key files (16 raw bytes or 32 hex digits; room for comments
// is not needed, but a newline or editor junk must not trip the bound).
inline constexpr uint64_t kMaxKeyFileBytes = 1 * kMiB;
// PEM certificates, keys and CA bundles (a full system CA bundle is ~200 KB).
inline constexpr uint64_t kMaxPemFileBytes = 1 * kMiB;
// LDIF exports are streamed, never held whole; the bound only stops an
// endless file. 64 GiB is far beyond any directory export.
inline constexpr uint64_t kMaxLdifFileBytes = 64 * kGiB;

// An owned file descriptor, closed on destruction. Move-only.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(-1); }

  int get() const { return fd_; }
  // Closes the current descriptor (if any) and owns `fd`.
  void Reset(int fd);
  // Closes now, returning close(2)'s errno (0 on success or if none).
  int Close();

 private:
  int fd_;
};

// A regular file opened for reading, and its size when it was opened.
struct OpenedFile {
  UniqueFd fd;
  uint64_t size = 0;
};

// Opens `path` for reading as described above. `what` names the file in
// errors ("config file", "snapshot", "tls.cert_file"). A file of more than
// `max_bytes` bytes is refused with InvalidArgument
// "<what> <path>: file has N bytes, more than the M allowed".
absl::StatusOr<OpenedFile> OpenRegularFile(std::string_view what,
                                           const std::string& path,
                                           uint64_t max_bytes);

// The whole content of the regular file at `path`, at most `max_bytes`
// bytes (see above; a file that grows past the bound while being read is
// refused as well).
absl::StatusOr<std::string> ReadRegularFile(std::string_view what,
                                            const std::string& path,
                                            uint64_t max_bytes);

// A read-only std::streambuf over an OpenedFile, for parsers that stream
// (LDIF). It serves at most `max_bytes` bytes; if the file holds more (it
// grew after it was opened), it stops there and exceeded() turns true: the
// caller must then treat the parse as failed, not as a short file. A read
// error also ends the stream; error() holds its errno (0 if none).
//
// Not thread-safe (a streambuf never is).
class FileStreamBuf : public std::streambuf {
 public:
  FileStreamBuf(OpenedFile file, uint64_t max_bytes);
  FileStreamBuf(const FileStreamBuf&) = delete;
  FileStreamBuf& operator=(const FileStreamBuf&) = delete;

  bool exceeded() const { return exceeded_; }
  int error() const { return error_; }

 protected:
  int_type underflow() override;

 private:
  static constexpr size_t kBufferBytes = 64 * 1024;

  OpenedFile file_;
  uint64_t max_bytes_;
  uint64_t served_ = 0;
  bool exceeded_ = false;
  int error_ = 0;
  char buffer_[kBufferBytes];
};

}  // namespace rcptguard

#endif  // RCPTGUARD_COMMON_FILE_H_
