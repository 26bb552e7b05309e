// rcptguard-postfix's Prometheus metrics (prefix rcptguard_postfix_), by
// protocol. Every series is registered once, at start-up (Register); the
// request path only looks series up and increments them. Internal to
// rcptguard-postfix.
//
// Thread safety: after Register, the counters and gauges are prometheus-cpp
// atomics (safe from any thread); the maps are only read. The adapter
// updates them from its loop thread.
#ifndef RCPTGUARD_CLIENTS_POSTFIX_ADAPTER_METRICS_H_
#define RCPTGUARD_CLIENTS_POSTFIX_ADAPTER_METRICS_H_

#include <array>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/strings.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace rcptguard::postfix::internal {

enum class Protocol { kPolicy = 0, kSocketmap = 1 };
// "policy" or "socketmap" (label `protocol`).
const char* ProtocolName(Protocol p);

// The action class of a reply, for the requests metric.
std::string_view ActionClass(Protocol p, std::string_view reply);

// Registered once; the request path only looks series up.
struct AdapterMetrics {
  struct PerProtocol {
    absl::flat_hash_map<std::string, prometheus::Counter*> requests;
    absl::flat_hash_map<std::string, prometheus::Counter*> outcomes;
    absl::flat_hash_map<std::string, prometheus::Counter*> errors;
    prometheus::Histogram* latency = nullptr;
    prometheus::Counter* fail_open = nullptr;
    prometheus::Counter* tarpitted = nullptr;
    prometheus::Counter* tarpit_seconds = nullptr;
    prometheus::Counter* connections = nullptr;
    prometheus::Counter* idle_closed = nullptr;
    prometheus::Gauge* open = nullptr;
  };
  std::array<PerProtocol, 2> p;
  absl::flat_hash_map<std::string, prometheus::Counter*> upstream_failures;
  prometheus::Counter* refused = nullptr;
  prometheus::Gauge* in_flight = nullptr;

  PerProtocol& of(Protocol protocol) { return p[static_cast<int>(protocol)]; }

  void Count(absl::flat_hash_map<std::string, prometheus::Counter*>& m,
             std::string_view key) {
    auto it = m.find(ToAbsl(key));
    if (it != m.end()) it->second->Increment();
  }

  // Family::Add allocates and may throw: only here, at start-up.
  static absl::StatusOr<std::unique_ptr<AdapterMetrics>> Register(
      prometheus::Registry& registry);
};

}  // namespace rcptguard::postfix::internal

#endif  // RCPTGUARD_CLIENTS_POSTFIX_ADAPTER_METRICS_H_
