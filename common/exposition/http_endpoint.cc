#include "common/exposition/http_endpoint.h"

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rcptguard::exposition {

namespace {

// civetweb's listening_ports syntax: "8080" (every IPv4 interface),
// "127.0.0.1:8080", "[::1]:8080". Accepts ":8080" for the first, as Go
// servers do.
absl::StatusOr<std::string> CivetListenAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics listen address \"", address,
                     "\" has no port (want host:port or :port)"));
  }
  const std::string port = address.substr(colon + 1);
  int port_number = 0;
  if (!absl::SimpleAtoi(port, &port_number) || port_number < 0 ||
      port_number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics listen address \"", address, "\" has a bad port"));
  }
  if (colon == 0) return port;
  return address;
}

// civetweb gives every connection a worker thread for as long as it is
// open, and waits request_timeout_ms (default 30 s) for a request's headers.
// prometheus-cpp's Exposer(address) starts 2 workers, so two idle
// connections blinded /metrics. Here a connection holds a worker for at most
// kRequestTimeoutMs while its request arrives (counted from the accept, so a
// byte-at-a-time client is cut off too), and no longer once answered
// (keep-alive stays off: one request per connection, as Prometheus copes
// with). N such clients then delay a scrape by about
// ceil(N / kWorkers) * kRequestTimeoutMs.
constexpr int kWorkers = 16;
constexpr int kRequestTimeoutMs = 1500;

std::vector<std::string> CivetOptions(const std::string& listening_ports) {
  return {"listening_ports",       listening_ports,
          "num_threads",           std::to_string(kWorkers),
          "request_timeout_ms",    std::to_string(kRequestTimeoutMs),
          "enable_keep_alive",     "no",
          "keep_alive_timeout_ms", std::to_string(kRequestTimeoutMs)};
}

}  // namespace

HttpEndpoint::~HttpEndpoint() = default;

absl::StatusOr<std::unique_ptr<HttpEndpoint>> StartHttpEndpoint(
    std::string listen_address,
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables) {
  absl::StatusOr<std::string> civet = CivetListenAddress(listen_address);
  if (!civet.ok()) return civet.status();
  std::unique_ptr<HttpEndpoint> server(new HttpEndpoint());
  server->collectables_ = std::move(collectables);
  try {
    server->exposer_ =
        std::make_unique<prometheus::Exposer>(CivetOptions(*civet));
    for (const auto& collectable : server->collectables_) {
      if (collectable != nullptr)
        server->exposer_->RegisterCollectable(collectable);
    }
    const std::vector<int> ports = server->exposer_->GetListeningPorts();
    if (!ports.empty()) server->port_ = ports.front();
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ",
                                               listen_address, ": ", e.what()));
  }
  return server;
}

absl::StatusOr<std::unique_ptr<HttpEndpoint>> StartHttpEndpoint(
    std::string listen_address,
    std::shared_ptr<prometheus::Registry> registry) {
  return StartHttpEndpoint(
      std::move(listen_address),
      std::vector<std::shared_ptr<prometheus::Collectable>>{
          std::move(registry)});
}

}  // namespace rcptguard::exposition
