#include "common/pem.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/file.h"
#include "common/strings.h"

namespace rcptguard {

absl::StatusOr<std::string> ReadPemFile(std::string_view what,
                                        const std::string& path) {
  absl::StatusOr<std::string> text =
      ReadRegularFile(what, path, kMaxPemFileBytes);
  if (absl::IsNotFound(text.status())) {
    return absl::NotFoundError(
        absl::StrCat(ToAbsl(what), ": cannot read \"", path, "\""));
  }
  if (!text.ok()) return text.status();
  if (text->find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(what), ": \"", path, "\" holds no PEM block"));
  }
  return text;
}

}  // namespace rcptguard
