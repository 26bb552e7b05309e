// Fuzzes the server config loader: any bytes must give a config that passes
// validation or a clean InvalidArgument, never a crash. A config that passes
// must be one the server can start with: its durations fit gRPC's int
// milliseconds unclamped and its numbers stay within the start-up limits.
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>

#include "server/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = rcptguard::service::ParseConfig(text, "fuzz", "/base");
  if (config.ok()) {
    // What parsed must validate again unchanged (defaults are a fixpoint).
    if (!rcptguard::service::ValidateConfig(*config).ok()) std::abort();
    if (config->limits().max_recipients_per_request() == 0) std::abort();
    using rcptguard::service::ConfigDuration;
    using rcptguard::service::DurationMillisForGrpc;
    for (const std::string* text : {&config->limits().idle_timeout(),
                                    &config->limits().handshake_timeout()}) {
      const absl::Duration d = ConfigDuration(*text);
      if (d <= absl::ZeroDuration() ||
          DurationMillisForGrpc(d) == std::numeric_limits<int>::max() ||
          DurationMillisForGrpc(d) != absl::ToInt64Milliseconds(d)) {
        std::abort();
      }
    }
    if (config->limits().max_concurrent_streams() >
            static_cast<uint32_t>(std::numeric_limits<int>::max()) ||
        config->metrics().max_edge_ids() >
            rcptguard::service::kMaxEdgeIdsLimit) {
      std::abort();
    }
  } else if (config.status().code() != absl::StatusCode::kInvalidArgument) {
    std::abort();
  }
  return 0;
}
