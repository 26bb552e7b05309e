// Prometheus exposition over HTTP: serves GET /metrics for any set of
// prometheus-cpp collectables (prometheus-cpp's Exposer, civetweb). Generic:
// rcptguardd serves its ServerMetrics (server/metrics) with it, the edge
// adapters (rcptguard-postfix) their own registries. It knows nothing of
// which metrics it serves.
//
//   RG_ASSIGN_OR_RETURN(std::unique_ptr<exposition::HttpEndpoint> http,
//                       exposition::StartHttpEndpoint("127.0.0.1:9464",
//                                                     registry));
//   LogInfo("metrics_listening", {{"port", http->port()}});
//
// Slow and idle clients: 16 worker threads, one per open connection; a
// connection that has not sent a whole request 1.5 s after it was accepted
// is closed, and every answered one is closed (no keep-alive). So N clients
// that connect and say nothing (or trickle bytes) delay a scrape by about
// ceil(N / 16) * 1.5 s: 18 such clients cost one scrape ~1.3 s (measured),
// 100 that reconnect as soon as they are closed ~9 s. The endpoint serves
// no secrets but is not built to face untrusted networks at scale: the
// default listen addresses are loopback (docs/security.md, "Metrics
// endpoints").
//
// Thread safety: port() may be called from any thread; destroy an
// HttpEndpoint from one. The collectables are collected on the endpoint's
// worker threads, concurrently with whatever updates them.
#ifndef RCPTGUARD_COMMON_EXPOSITION_HTTP_ENDPOINT_H_
#define RCPTGUARD_COMMON_EXPOSITION_HTTP_ENDPOINT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace rcptguard::exposition {

// Serves GET /metrics until destroyed.
class HttpEndpoint {
 public:
  ~HttpEndpoint();
  // The port actually bound: with port 0 in the listen address, the one the
  // kernel picked.
  int port() const { return port_; }

 private:
  friend absl::StatusOr<std::unique_ptr<HttpEndpoint>> StartHttpEndpoint(
      std::string, std::vector<std::shared_ptr<prometheus::Collectable>>);
  HttpEndpoint() = default;

  // Declared first so the exposer (which holds weak pointers) stops before
  // the collectables may go.
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

// Listens on `listen_address` ("host:port", "[v6]:port", ":port" for every
// IPv4 interface; port 0 picks a free one, see HttpEndpoint::port()) and
// serves `collectables` at /metrics. Keeps them alive while serving.
// Errors: InvalidArgument for an address without a port; Unavailable,
// naming the address, when it cannot listen.
absl::StatusOr<std::unique_ptr<HttpEndpoint>> StartHttpEndpoint(
    std::string listen_address,
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables);
absl::StatusOr<std::unique_ptr<HttpEndpoint>> StartHttpEndpoint(
    std::string listen_address, std::shared_ptr<prometheus::Registry> registry);

}  // namespace rcptguard::exposition

#endif  // RCPTGUARD_COMMON_EXPOSITION_HTTP_ENDPOINT_H_
