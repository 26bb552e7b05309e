// The adapter's sockets: binding a listener for a ListenAddress (TCP or a
// unix socket, non-blocking) and naming a connection's peer for logs.
// Internal to rcptguard-postfix.
//
// Thread safety: functions of their arguments and the file descriptors they
// are given; safe from any thread.
#ifndef RCPTGUARD_CLIENTS_POSTFIX_LISTENER_H_
#define RCPTGUARD_CLIENTS_POSTFIX_LISTENER_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clients/postfix/adapter_options.h"

namespace rcptguard::postfix::internal {

std::string ErrnoText(int err);
// Unavailable "WHAT: strerror(err)".
absl::Status ErrnoStatus(std::string_view what, int err);

// A listening socket; fd -1 when not listening.
struct Listener {
  int fd = -1;
  int port = 0;
  std::string unix_path;
};

// Binds and listens (backlog 1024) on `address`, non-blocking and
// close-on-exec. A unix socket gets permissions `mode`; an existing socket
// at its path is replaced, anything else there is refused. With port 0 the
// kernel picks the port (Listener::port).
absl::StatusOr<Listener> Listen(const ListenAddress& address, int mode);

// "HOST:PORT", "[V6]:PORT", "unix" or "unknown" for a connected socket.
std::string PeerName(int fd);

}  // namespace rcptguard::postfix::internal

#endif  // RCPTGUARD_CLIENTS_POSTFIX_LISTENER_H_
