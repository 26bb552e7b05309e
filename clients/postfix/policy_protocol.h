// Postfix SMTPD access policy delegation protocol (check_policy_service):
// the request parser and the mapping from rcptguard's answer to an action.
//
// A request is a block of `name=value` lines ended by an empty line; many
// requests follow each other on one connection. The reply is one
// `action=...` line and an empty line. On a protocol error the server sends
// no reply and closes the connection (Postfix then logs the failure and, if
// no retry succeeds, applies smtpd_policy_service_default_action).
//
//   PolicyParser parser(PolicyLimits{});
//   parser.Append(bytes);
//   PolicyRequest request;
//   for (;;) {
//     PolicyParser::Next next = parser.NextRequest(&request);
//     if (next == PolicyParser::Next::kNeedMore) break;   // read more
//     if (next == PolicyParser::Next::kError) ...;        // log, close
//     ... answer `request` ...
//   }
//
// Nothing here does I/O or knows gRPC; everything is a pure function of its
// input, so it is unit-tested and fuzzed in-process.
//
// Thread safety: a PolicyParser is used by one connection at a time; the
// free functions are pure.
#ifndef RCPTGUARD_CLIENTS_POSTFIX_POLICY_PROTOCOL_H_
#define RCPTGUARD_CLIENTS_POSTFIX_POLICY_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "clients/cpp/recipient_result.h"
#include "rcptguard/v1/validation.pb.h"

namespace rcptguard::postfix {

struct PolicyLimits {
  // Bytes in one `name=value` line, without its newline. Postfix's own
  // attributes are far shorter (an address is at most 254 octets + name).
  size_t max_line = 2048;
  // Attribute lines in one request (Postfix 3.7 sends 32).
  size_t max_attributes = 100;
  // Bytes of one request's attribute lines together (a Postfix request is
  // under 1 KiB plus certificate subjects): bounds what one connection can
  // make the adapter hold.
  size_t max_request_bytes = 32 * 1024;
};

// Why a request was refused; also the `kind` label of the protocol error
// metric.
enum class PolicyError {
  kNone = 0,
  kLineTooLong,
  kTooManyAttributes,
  kRequestTooLarge,
  kNoEquals,        // a line without '='
  kEmptyName,       // "=value"
  kBadName,         // a name with bytes other than [A-Za-z0-9_-]
  kNulByte,         // NUL in a line
  kDuplicate,       // the same attribute twice in one request
  kEmptyRequest,    // an empty line where a request should start
  kBadRequestType,  // no request=, or not smtpd_access_policy
};
std::string_view PolicyErrorName(PolicyError error);

// One request's attributes, in arrival order. Unknown names are kept (and
// ignored by the mapping below), as the protocol asks.
struct PolicyRequest {
  std::vector<std::pair<std::string, std::string>> attributes;
  // The value of `name`, "" when absent.
  std::string_view Get(std::string_view name) const;
};

// Incremental parser over the byte stream of one connection.
class PolicyParser {
 public:
  enum class Next { kNeedMore, kRequest, kError };

  explicit PolicyParser(const PolicyLimits& limits) : limits_(limits) {}

  // Adds bytes read from the connection.
  void Append(std::string_view bytes) { buffer_.append(bytes); }
  // Extracts the next complete request into *request. kNeedMore: no full
  // request yet (and no limit broken by what has arrived). kError: error()
  // says why; the parser stays in error.
  Next NextRequest(PolicyRequest* request);

  PolicyError error_kind() const { return error_kind_; }
  // E.g. `line 3: no '=' in attribute line "garbage"` (the excerpt is
  // C-escaped and cut to 40 bytes).
  const absl::Status& error() const { return error_; }
  // Bytes received and not yet parsed into attributes.
  size_t buffered() const { return buffer_.size(); }

 private:
  Next Fail(PolicyError kind, std::string message);

  const PolicyLimits limits_;
  std::string buffer_;     // unparsed bytes (at most one partial line
                           // once NextRequest() returned kNeedMore)
  size_t line_start_ = 0;  // first byte of the line being read
  size_t scan_ = 0;        // bytes before this hold no unread newline
  std::vector<std::pair<std::string, std::string>> pending_;  // this request
  size_t pending_bytes_ = 0;
  uint64_t line_no_ = 0;  // lines consumed on this connection
  PolicyError error_kind_ = PolicyError::kNone;
  absl::Status error_;
};

// What the adapter pulls out of a request for rcptguard.
struct PolicyQuery {
  v1::SmtpContext context;
  std::string recipient;
};

// How a request is answered: at once, or after asking rcptguard.
struct PolicyRoute {
  enum class Kind {
    kAnswer,  // answer `action` now; no lookup
    kLookup,  // ask rcptguard about query.recipient
  };
  Kind kind = Kind::kAnswer;
  std::string action;  // for kAnswer
  // Why no lookup is needed ("not_rcpt", "sasl", "no_recipient").
  std::string_view reason;
  PolicyQuery query;  // for kLookup
};

// Decides whether `request` needs a lookup. Not RCPT state: DUNNO.
// Authenticated (sasl_username set): DUNNO, never sent to the service. No
// recipient: DUNNO. Otherwise a lookup with client_address, helo_name,
// sender, queue_id (or instance when there is no queue id yet) and
// `edge_id`.
PolicyRoute RoutePolicyRequest(const PolicyRequest& request,
                               std::string_view edge_id);

// The policy answer for one recipient.
struct PolicyAnswer {
  // The access(5) action without "action=", e.g. "DUNNO" or
  // "550 5.1.1 User unknown".
  std::string action;
  // Wait this long before sending it (TARPIT).
  absl::Duration delay;
  // Bounded label for metrics: valid, unknown, monitor, not_served,
  // malformed, stale, client_tempfail, client_reject, fail_open,
  // fail_tempfail.
  std::string_view outcome;
};

// Maps rcptguard's answer to a Postfix action:
//   VALID → DUNNO (the rest of the restrictions still apply);
//   UNKNOWN → the service's reply (550 5.1.1 ..., 450 4.1.1 when the
//     directory is stale); monitor_only → DUNNO;
//   NOT_SERVED → 554 5.7.1 ...; MALFORMED → 501 5.1.3 ...;
//   client TEMPFAIL → 451 4.7.1 ...; REJECT → 550 5.7.1 ...;
//   client TARPIT → the above after delay_ms (at most `max_delay`);
//   no answer → DUNNO (fail_open) or 451 4.3.0 (tempfail).
// Reply texts are cleaned of control bytes; a reply the service sent with a
// code outside 4xx/5xx for a non-valid recipient falls back to the default.
PolicyAnswer AnswerPolicy(const client::RecipientResult& result,
                          absl::Duration max_delay);

// "action=<action>\n\n".
std::string FormatPolicyReply(std::string_view action);

// `code enhanced text` from a reply, with defaults for missing parts and
// control bytes replaced by spaces (shared with socketmap replies).
std::string FormatSmtpReply(const v1::SmtpReply& reply, uint32_t default_code,
                            std::string_view default_enhanced,
                            std::string_view default_text);
// Replaces bytes below 0x20 and 0x7f by spaces and cuts to `max` bytes.
std::string CleanText(std::string_view text, size_t max = 400);

}  // namespace rcptguard::postfix

#endif  // RCPTGUARD_CLIENTS_POSTFIX_POLICY_PROTOCOL_H_
