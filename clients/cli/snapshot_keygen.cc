// `rcptguard snapshot keygen`: a new random fingerprint key, written with
// mode 0600, never over an existing key unless --force (then atomically).
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "clients/cli/snapshot_command.h"
#include "clients/cli/snapshot_flags.h"
#include "clients/cli/snapshot_util.h"
#include "server/directory/siphash.h"

namespace rcptguard::cli::internal {
namespace {

absl::Status FsyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open folder ", dir, ": ", ErrnoText(errno)));
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("cannot fsync folder ", dir, ": ", ErrnoText(err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RandomKeyBytes() {
  std::string bytes(16, '\0');
  size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t n =
        ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (n > 0) {
      filled += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return absl::UnavailableError(
          absl::StrCat("getrandom failed: ", ErrnoText(errno),
                       "; refusing to make a key from a weaker source"));
    }
  }
  return bytes;
}

// Writes `content` to a new file `path` (mode 0600, O_EXCL) and fsyncs it.
// Removes the file again on failure.
absl::Status WriteNewPrivateFile(const std::string& path,
                                 std::string_view content) {
  const int fd = ::open(
      path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat(path, " already exists"));
    }
    return absl::InternalError(
        absl::StrCat("cannot create ", path, ": ", ErrnoText(err)));
  }
  std::string_view rest = content;
  int err = 0;
  if (::fchmod(fd, 0600) != 0) err = errno;  // exact, whatever the umask
  while (err == 0 && !rest.empty()) {
    const ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(path.c_str());
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", ErrnoText(err)));
  }
  return absl::OkStatus();
}

}  // namespace

int RunKeygen(const std::vector<char*>& args) {
  constexpr std::string_view kCmd = "keygen";
  if (!Operands(args).empty()) return Usage(kCmd, "unexpected operand");
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return Usage(kCmd, "--out FILE is required");
  const bool force = absl::GetFlag(FLAGS_force);

  absl::StatusOr<std::string> bytes = RandomKeyBytes();
  if (!bytes.ok()) return Fail(kCmd, bytes.status());
  absl::StatusOr<directory::SipKey> key = directory::SipKey::FromBytes(*bytes);
  if (!key.ok()) return Fail(kCmd, key.status());
  const std::string text = absl::StrCat(absl::BytesToHexString(*bytes), "\n");

  if (!force) {
    absl::Status written = WriteNewPrivateFile(out, text);
    if (absl::IsAlreadyExists(written)) {
      return Fail(
          kCmd, absl::StrCat(out,
                             " already exists; refusing to overwrite a key "
                             "(snapshots built with it would no longer load). "
                             "Use --force to replace it"));
    }
    if (!written.ok()) return Fail(kCmd, written);
  } else {
    // Replace atomically: a crash leaves the old key or the new one.
    const std::string tmp = absl::StrCat(out, ".tmp.", ::getpid());
    ::unlink(tmp.c_str());  // a leftover of a crashed run with our pid
    absl::Status written = WriteNewPrivateFile(tmp, text);
    if (!written.ok()) return Fail(kCmd, written);
    if (::rename(tmp.c_str(), out.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return Fail(kCmd, absl::StrCat("cannot rename ", tmp, " to ", out, ": ",
                                     ErrnoText(err)));
    }
  }
  if (absl::Status s = FsyncDir(DirName(out)); !s.ok()) return Fail(kCmd, s);
  std::printf("wrote a new fingerprint key to %s (mode 0600); key id %s\n",
              out.c_str(), HexId(key->Id()).c_str());
  return kExitOk;
}

}  // namespace rcptguard::cli::internal
