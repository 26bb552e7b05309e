// rcptguard C++ client library: asks a rcptguard server whether recipients
// exist, for edge adapters (Postfix policy/socketmap, milters, gateways).
//
// A Client owns one gRPC channel to one target and gives every call a
// deadline. It offers two levels:
//
//   - Validate(): one ValidateRequest (one SMTP transaction, any number of
//     recipients) as one unary call; the raw answer or the gRPC error.
//   - CheckRecipient(): one recipient of one transaction, answered with a
//     RecipientResult that already applies the failure policy. Concurrent
//     CheckRecipient() calls whose SMTP context and dry_run flag are
//     identical are merged into one Validate (at most `max_batch`
//     recipients), which is how a table lookup path (Postfix socketmap: no
//     client context at all) turns thousands of single lookups per second
//     into a few hundred calls. Merging adds no latency at low load: a
//     check goes out at once when no call for its context is in flight;
//     while one is, checks gather until it returns, `batch_window` ends or
//     the batch is full, whichever comes first (the window's end is
//     noticed when another check arrives, at the latest a tenth of the
//     deadline later). Calls with different
//     contexts are never merged: the server counts each request as one
//     harvest observation of one client, so merging clients would blame one
//     client for another's recipients.
//
// Example:
//
//   ClientOptions options;
//   options.target = "127.0.0.1:50051";
//   absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
//   if (!client.ok()) ...;
//   v1::SmtpContext context;
//   context.set_client_ip("203.0.113.7");
//   (*client)->CheckRecipient(context, "alice@example.com", {},
//       [](RecipientResult r) {
//         if (r.source == RecipientResult::Source::kService &&
//             r.verdict.status() == v1::RECIPIENT_STATUS_UNKNOWN) ...;
//       });
//
// Transport: by default every request travels over one long-lived
// RecipientValidation.ValidateBatchStream (Transport::kBatchStream; see
// stream_transport.h): a request leaves at once when nothing is in flight,
// and while a stream message is in flight, the requests of every caller
// (any context) queue and leave together in the next message when its
// answer returns (group commit: batches grow with load, no added latency
// when idle). The server still judges each ValidateRequest alone, so
// merging across contexts changes no answer. The deadline is enforced per
// request by the client (checked every tenth of it, at most every 50 ms):
// a stream with a request past its deadline is cancelled, everything
// pending on it is answered by the failure policy, and the next request
// opens a new stream. kStream uses ValidateStream (one request per
// message, pipelined); kUnary one Validate call per request, as before.
// A server without ValidateBatchStream is used through ValidateStream,
// one without either through Validate.
//
// Retries: only dry lookups (ValidateRequest.dry_run / CheckOptions.dry_run)
// are retried, and only on UNAVAILABLE, within the same overall deadline. A
// non-dry request feeds the server's harvest counters, so a retry after a
// lost answer would count the recipients twice.
//
// Failure policy: when the server cannot be reached or does not answer in
// time, kFailOpen (the default) answers "no opinion" (Source::kFailOpen), so
// mail flows as it would without rcptguard; kTempfail answers
// Source::kTempfail, and the edge should defer (4xx). The policy only
// decides how RecipientResult is marked; the edge maps it to its protocol.
// A request the server refuses as invalid (INVALID_ARGUMENT) is no outage:
// a merged batch is split and each recipient asked alone, and a recipient
// refused alone is answered Source::kInvalid. Bytes from the remote client
// (recipients, helo, mail_from) are sent as received; a context string
// field from the edge (client_ip, session_id, edge_id) that is not valid
// UTF-8 is cleared before sending.
//
// Thread safety: a Client is safe to share between threads. Callbacks run
// on the client's completion thread (the one thread that polls the channel;
// rarely on its scheduler thread or, for a request refused at once, on the
// caller's) and must not block: every answer waits
// behind them. They may call back into the Client. The destructor sends any
// pending batch, waits for every call in flight (each bounded by its
// deadline) and returns only after the last callback has returned.
#ifndef RCPTGUARD_CLIENTS_CPP_CLIENT_H_
#define RCPTGUARD_CLIENTS_CPP_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/cpp/recipient_result.h"
#include "grpcpp/channel.h"
#include "rcptguard/v1/validation.pb.h"

namespace rcptguard::client {

// What the edge does when the service is unreachable or too slow.
enum class FailurePolicy {
  // Answer "no opinion": the edge lets the recipient through as if
  // rcptguard were not configured (Postfix: DUNNO).
  kFailOpen,
  // Answer a temporary failure: the sender retries later (Postfix: 451).
  kTempfail,
};

// "fail_open" or "tempfail"; anything else is InvalidArgument.
absl::StatusOr<FailurePolicy> ParseFailurePolicy(std::string_view text);
std::string_view FailurePolicyName(FailurePolicy policy);

struct TlsOptions {
  // Off: a plaintext channel (only for 127.0.0.1 or a private network).
  bool enabled = false;
  // PEM file with the CA certificates that sign the server's certificate;
  // empty: the system roots.
  std::string ca_file;
  // PEM client certificate chain and private key, for mutual TLS; both or
  // neither.
  std::string cert_file;
  std::string key_file;
  // Name to expect in the server's certificate instead of the target's
  // host (tests, or a target given as an IP address).
  std::string server_name_override;
};

// How requests travel (see the file comment).
enum class Transport {
  kUnary,        // one Validate call per request
  kStream,       // ValidateStream: one request per message, pipelined
  kBatchStream,  // ValidateBatchStream: group commit (the default)
};

// "unary", "stream" or "batch_stream"; anything else is InvalidArgument.
absl::StatusOr<Transport> ParseTransport(std::string_view text);
std::string_view TransportName(Transport transport);

struct ClientOptions {
  // gRPC target: "host:port", "unix:/path", "dns:///name:port".
  std::string target = "127.0.0.1:50051";
  TlsOptions tls;
  // Every call (and a dry lookup's retries together) must finish within
  // this; then it fails with DEADLINE_EXCEEDED and the failure policy
  // applies. Must be positive.
  absl::Duration deadline = absl::Milliseconds(500);
  // Total attempts for dry lookups on UNAVAILABLE (1 = no retry), with
  // `retry_backoff` between them. Non-dry calls are attempted once.
  int dry_run_attempts = 3;
  absl::Duration retry_backoff = absl::Milliseconds(20);
  // Longest a CheckRecipient() waits for others with the same context
  // while a call for that context is in flight. Zero turns merging off.
  // At most 10 ms.
  absl::Duration batch_window = absl::Microseconds(500);
  // Recipients per merged Validate; a full batch is sent at once. Keep it
  // at most the server's limits.max_recipients_per_request. 1..1000.
  int max_batch = 64;
  FailurePolicy failure_policy = FailurePolicy::kFailOpen;
  // Put into every request's context.edge_id when that is empty.
  std::string edge_id;
  // gRPC reconnect backoff ceiling: how soon after the server comes back
  // calls succeed again. Also the ceiling of the stream transports' own
  // backoff between streams that fail without an answer.
  absl::Duration max_reconnect_backoff = absl::Seconds(2);
  Transport transport = Transport::kBatchStream;
  // kBatchStream: stream messages in flight at once (1: pure group
  // commit, the largest batches) and requests per message. 1..64, 1..1000.
  int stream_messages_in_flight = 1;
  int max_requests_per_message = 256;
};

// Clears the context's string fields (client_ip, session_id, edge_id) that
// are not valid UTF-8: a proto3 string that is not makes the whole request
// unparsable, so the request is sent, and checked, without them. The
// fields the remote client chose (helo, mail_from) are bytes and left as
// they are. Validate() does this to every request.
void ClearInvalidContextText(v1::SmtpContext* context);

// Checks an options struct as a whole (what Create() does first).
absl::Status ValidateOptions(const ClientOptions& options);

// The channel Create() would use: target, TLS files and reconnect backoff
// from `options`. For tools that also call other services of the server
// (Admin, grpc.health.v1) with the same transport settings.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const ClientOptions& options);

struct CheckOptions {
  // Look up only: the server counts nothing for harvest detection. Dry
  // lookups are retried on UNAVAILABLE.
  bool dry_run = false;
  // Allow merging with concurrent identical-context checks. An edge whose
  // contexts are unique per SMTP session (Postfix policy delegation: each
  // session asks one RCPT at a time) gains nothing from waiting and should
  // pass false.
  bool batch = true;
};

using RecipientCallback = std::function<void(RecipientResult)>;
using ValidateCallback =
    std::function<void(absl::StatusOr<v1::ValidateResponse>)>;

// Counters since Create(); read with Client::stats().
struct ClientStats {
  uint64_t calls = 0;            // requests sent (attempts): unary calls
                                 //   or stream requests
  uint64_t retries = 0;          // of which retries of dry lookups
  uint64_t failed_calls = 0;     // RPCs that ended with an error
  uint64_t checks = 0;           // CheckRecipient() calls
  uint64_t merged_checks = 0;    // checks that shared a Validate with others
  uint64_t policy_answers = 0;   // checks answered by the failure policy
  uint64_t streams = 0;          // streams opened (stream transports)
  uint64_t stream_messages = 0;  // stream messages written
  uint64_t stream_cancels = 0;   // streams cancelled at a request deadline
};

class Client {
 public:
  // Creates the channel (it connects lazily, on the first call). Errors:
  // InvalidArgument for bad options, NotFound / PermissionDenied for
  // unreadable TLS files.
  static absl::StatusOr<std::unique_ptr<Client>> Create(
      const ClientOptions& options);
  // For tests and tools that already have a channel.
  static absl::StatusOr<std::unique_ptr<Client>> CreateWithChannel(
      const ClientOptions& options, std::shared_ptr<grpc::Channel> channel);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  // One Validate call, asynchronous. `done` gets the response or the gRPC
  // error as an absl::Status (same code). The context's edge_id is filled
  // from the options when empty. A response whose verdict count does not
  // match the request is reported as Internal.
  void Validate(v1::ValidateRequest request, ValidateCallback done);
  // The same, blocking the caller until the answer or the deadline.
  absl::StatusOr<v1::ValidateResponse> ValidateSync(
      v1::ValidateRequest request);

  // One recipient, asynchronous; `done` is called exactly once. Never
  // fails: errors become kFailOpen / kTempfail results.
  void CheckRecipient(const v1::SmtpContext& context, std::string recipient,
                      const CheckOptions& check, RecipientCallback done);
  RecipientResult CheckRecipientSync(const v1::SmtpContext& context,
                                     std::string recipient,
                                     const CheckOptions& check = {});

  // The result the failure policy gives for `error` (exposed for edges
  // that call Validate() themselves).
  RecipientResult PolicyResult(absl::Status error) const;

  const ClientOptions& options() const;
  std::shared_ptr<grpc::Channel> channel() const;
  ClientStats stats() const;

 private:
  class Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rcptguard::client

#endif  // RCPTGUARD_CLIENTS_CPP_CLIENT_H_
