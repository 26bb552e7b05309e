#include "server/config/config_files.h"

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/file.h"

namespace rcptguard::service {
namespace {

// Opens and closes `path`: it exists, is a regular file no larger than
// `max_bytes`, and this process may read it.
absl::Status CheckReadable(const std::string& field, const std::string& path,
                           uint64_t max_bytes) {
  if (path.empty()) return absl::OkStatus();
  absl::StatusOr<OpenedFile> opened = OpenRegularFile(field, path, max_bytes);
  return opened.status();
}

}  // namespace

absl::Status CheckConfigFiles(const v1::ServerConfig& config) {
  constexpr uint64_t kAnySize = std::numeric_limits<uint64_t>::max();
  if (absl::Status s =
          CheckReadable("fingerprint_key_file", config.fingerprint_key_file(),
                        kMaxKeyFileBytes);
      !s.ok()) {
    return s;
  }
  const v1::DirectorySource& dir = config.directory();
  for (int i = 0; i < dir.ldif_files_size(); ++i) {
    if (absl::Status s =
            CheckReadable(absl::StrCat("directory.ldif_files[", i, "]"),
                          dir.ldif_files(i), kMaxLdifFileBytes);
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckReadable("directory.snapshot_file",
                                     dir.snapshot_file(), kAnySize);
      !s.ok()) {
    return s;
  }
  if (config.has_tls()) {
    const v1::Tls& tls = config.tls();
    for (const auto& [field, path] :
         {std::pair<const char*, const std::string*>{"tls.cert_file",
                                                     &tls.cert_file()},
          {"tls.key_file", &tls.key_file()},
          {"tls.client_ca_file", &tls.client_ca_file()}}) {
      if (absl::Status s = CheckReadable(field, *path, kMaxPemFileBytes);
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace rcptguard::service
