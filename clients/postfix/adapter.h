// The rcptguard-postfix adapter: serves Postfix's policy delegation and
// socketmap protocols and answers from rcptguard through the client
// library.
//
// Design: one event-loop thread (epoll, non-blocking sockets, level
// triggered) serves every connection. A request that needs rcptguard starts
// an asynchronous CheckRecipient(); its callback answers on the thread that
// received the answer (the client library's completion thread), under the
// adapter's state lock, which the loop holds except while it waits in
// epoll_wait: the reply is written at once, with no hand-over to the loop
// (a wake-up less per lookup). A callback run inside CheckRecipient itself
// (a request refused at once) posts its answer to a mailbox that wakes the
// loop through an eventfd. A TARPIT verdict parks the connection on the
// loop's timer heap: nothing blocks per connection, so thousands of mostly
// idle smtpd connections cost a few kilobytes each and a tarpitted one
// costs nothing while it waits.
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
// This header is the adapter's API, options (adapter_options.h) included.
// The rest of the library is internal: the metrics (adapter_metrics.h), the
// sockets (listener.h) and what each protocol's request becomes
// (protocol_handling.h); adapter.cc is the event loop.
//
// Thread safety: Create() and Run() on one thread; Stop() from any thread
// (it only writes an eventfd). Ports are known after Create(). Internally
// the connection state is guarded by one lock shared by the loop and the
// threads that answer lookups; a callback that arrives after the Adapter
// is gone finds no owner and drops its answer.
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
#include "clients/postfix/adapter_options.h"
#include "prometheus/registry.h"

namespace rcptguard::postfix {

class Adapter {
 public:
  // Binds the listeners and registers the metrics (prefix
  // rcptguard_postfix_) in `registry`, which the Adapter keeps alive.
  // `client` must outlive the Adapter.
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
