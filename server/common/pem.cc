#include "server/common/pem.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/common/strings.h"

namespace rcptguard {

absl::StatusOr<std::string> ReadPemFile(std::string_view what,
                                        const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(ToAbsl(what), ": cannot read \"", path, "\""));
  }
  std::ostringstream out;
  out << in.rdbuf();
  std::string text = out.str();
  if (text.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(what), ": \"", path, "\" holds no PEM block"));
  }
  return text;
}

}  // namespace rcptguard
