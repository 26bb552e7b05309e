// The rcptguard-postfix adapter: serves Postfix's policy delegation and
// socketmap protocols and answers from rcptguard through the client
// library.
//
// Design: one event-loop thread (epoll, non-blocking sockets, level
// triggered) owns every connection. A request that needs rcptguard starts
// an asynchronous CheckRecipient(); its callback (on a gRPC thread) only
// posts the answer to a mailbox and wakes the loop through an eventfd. A
// TARPIT verdict parks the connection on a timer heap: nothing blocks per
// connection, so thousands of mostly idle smtpd connections cost a few
// kilobytes each and a tarpitted one costs nothing while it waits.
//
// Each connection handles one request at a time, as Postfix sends them
// (Postfix waits for each answer); bytes that arrive meanwhile stay in the
// socket until the answer is sent. A protocol error (garbage, a line or a
// netstring over its limit, too many attributes) is logged once with the
// peer and the reason, counted, and the connection is closed without a
// reply, as the policy protocol asks of a server in trouble.
//
// Stop() begins a drain: listeners close, idle connections close, parked
// tarpits are answered at once, requests waiting for rcptguard get their
// answer and then their connection closes; Run() returns when none is left
// or after drain_timeout.
//
// Thread safety: Create() and Run() on one thread; Stop() from any thread
// (it only writes an eventfd). Ports are known after Create().
#ifndef RCPTGUARD_CLIENTS_POSTFIX_ADAPTER_H_
#define RCPTGUARD_CLIENTS_POSTFIX_ADAPTER_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "clients/postfix/policy_protocol.h"
#include "clients/postfix/socketmap_protocol.h"
#include "prometheus/registry.h"

namespace rcptguard::postfix {

// "inet:HOST:PORT" (HOST an IPv4 or IPv6 address, [v6] allowed; PORT 0
// picks a free one) or "unix:/absolute/path".
struct ListenAddress {
  enum class Kind { kInet, kUnix };
  Kind kind = Kind::kInet;
  std::string host;
  int port = 0;
  std::string path;
};
absl::StatusOr<ListenAddress> ParseListenAddress(std::string_view text);

// Recipients longer than this are answered as malformed without asking
// rcptguard (the server refuses them as a whole request; an address has at
// most 256 octets).
inline constexpr size_t kMaxRecipientBytes = 1024;

struct AdapterOptions {
  // Where to serve each protocol; empty turns it off. At least one.
  std::string policy_listen = "inet:127.0.0.1:9998";
  std::string socketmap_listen;
  // The map name in socketmap:inet:HOST:PORT:NAME.
  std::string socketmap_name = "rcpt";
  // Permissions of unix sockets (Postfix's smtpd runs as `postfix`).
  int unix_socket_mode = 0666;
  PolicyLimits policy_limits;
  size_t max_netstring = kMaxNetstringBytes;
  // Connections beyond this are accepted and closed at once (counted).
  size_t max_connections = 10000;
  // A connection with no request in progress and no bytes for this long
  // is closed. Postfix closes idle policy connections after max_idle
  // (300 s) and socketmap ones after about 10 s itself.
  absl::Duration idle_timeout = absl::Seconds(600);
  // TARPIT delays are capped here; keep it below
  // smtpd_policy_service_timeout.
  absl::Duration max_tarpit_delay = absl::Seconds(60);
  absl::Duration drain_timeout = absl::Seconds(10);
  // SmtpContext.edge_id; empty: "postfix/<server_address>".
  std::string edge_id;
};

absl::Status ValidateAdapterOptions(const AdapterOptions& options);

class Adapter {
 public:
  // Binds the listeners and registers the metrics (prefix
  // rcptguard_postfix_) in `registry`. `client` must outlive the Adapter.
  // Errors: InvalidArgument for options, the bind/listen error otherwise.
  static absl::StatusOr<std::unique_ptr<Adapter>> Create(
      const AdapterOptions& options, client::Client* client,
      std::shared_ptr<prometheus::Registry> registry);
  ~Adapter();

  // Bound ports (0 when the protocol is off or on a unix socket).
  int policy_port() const;
  int socketmap_port() const;

  // Serves until Stop() and the drain; OK after a drain (also when it ran
  // out of time, which is logged with the number of connections cut).
  absl::Status Run();
  // Begins the drain. Async-signal-safe.
  void Stop();

  class Impl;

 private:
  explicit Adapter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rcptguard::postfix

#endif  // RCPTGUARD_CLIENTS_POSTFIX_ADAPTER_H_
