// Fuzzes the server config loader: any bytes must give a config that passes
// validation or a clean InvalidArgument, never a crash.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/service/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = rcptguard::service::ParseConfig(text, "fuzz", "/base");
  if (config.ok()) {
    // What parsed must validate again unchanged (defaults are a fixpoint).
    if (!rcptguard::service::ValidateConfig(*config).ok()) std::abort();
    if (config->limits().max_recipients_per_request() == 0) std::abort();
  } else if (config.status().code() != absl::StatusCode::kInvalidArgument) {
    std::abort();
  }
  return 0;
}
