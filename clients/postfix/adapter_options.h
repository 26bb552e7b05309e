// rcptguard-postfix's options: where to listen, protocol limits, timeouts,
// and their validation. Part of the adapter's API: include
// clients/postfix/adapter.h.
//
// Thread safety: plain values and pure functions; safe from any thread.
#ifndef RCPTGUARD_CLIENTS_POSTFIX_ADAPTER_OPTIONS_H_
#define RCPTGUARD_CLIENTS_POSTFIX_ADAPTER_OPTIONS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/postfix/policy_protocol.h"
#include "clients/postfix/socketmap_protocol.h"

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
  // Permissions of unix sockets: owner and group (run the adapter with
  // the `postfix` group, or put the socket in a folder smtpd can reach);
  // never every local user.
  int unix_socket_mode = 0660;
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

// The first problem, as "OPTION: reason" with OPTION the flag name
// (e.g. "max_line: must be 64..1048576"), so that the caller can say where
// the option was set.
absl::Status ValidateAdapterOptions(const AdapterOptions& options);

}  // namespace rcptguard::postfix

#endif  // RCPTGUARD_CLIENTS_POSTFIX_ADAPTER_OPTIONS_H_
