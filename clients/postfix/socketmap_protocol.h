// Postfix socketmap protocol (socketmap:inet:HOST:PORT:NAME or
// socketmap:unix:PATH:NAME): the netstring decoder, request parsing and
// the mapping from rcptguard's answer to a socketmap reply.
//
// Every request and reply is a netstring `LEN:BYTES,` (decimal length, no
// leading zeros). A request is `NAME key`; Postfix sends the whole address,
// already lower-cased (see docs/postfix.md for what that means for `ß`).
// Replies: `OK data` (data never empty: Postfix treats an empty value as a
// table error), `NOTFOUND `, `TEMP reason`, `TIMEOUT reason`, `PERM reason`.
// A malformed netstring is a protocol error: no reply, connection closed.
//
//   NetstringDecoder decoder(100000);
//   decoder.Append(bytes);
//   std::string payload;
//   while (decoder.NextRecord(&payload) ==
//          NetstringDecoder::Next::kRecord) {
//     absl::StatusOr<SocketmapRequest> request =
//     ParseSocketmapRequest(payload);
//     ...
//   }
//
// Thread safety: a NetstringDecoder belongs to one connection; the free
// functions are pure.
#ifndef RCPTGUARD_CLIENTS_POSTFIX_SOCKETMAP_PROTOCOL_H_
#define RCPTGUARD_CLIENTS_POSTFIX_SOCKETMAP_PROTOCOL_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/cpp/recipient_result.h"

namespace rcptguard::postfix {

// Postfix's own limit on socketmap replies; queries are at most 10,000.
inline constexpr size_t kMaxNetstringBytes = 100000;

enum class NetstringError {
  kNone = 0,
  kBadLength,      // a byte other than a digit before ':'
  kLeadingZero,    // "01:x,"
  kLengthTooLong,  // more digits than the limit can need, or over the limit
  kNoComma,        // the byte after the payload is not ','
};
std::string_view NetstringErrorName(NetstringError error);

class NetstringDecoder {
 public:
  enum class Next { kNeedMore, kRecord, kError };

  explicit NetstringDecoder(size_t max_payload = kMaxNetstringBytes)
      : max_payload_(max_payload) {}

  void Append(std::string_view bytes) { buffer_.append(bytes); }
  // Extracts the next payload. kNeedMore: incomplete (nothing broken so
  // far). kError: error() says why, e.g. `netstring 2: length 200000
  // exceeds the limit of 100000`; the decoder stays in error.
  Next NextRecord(std::string* payload);

  NetstringError error_kind() const { return error_kind_; }
  const absl::Status& error() const { return error_; }
  size_t buffered() const { return buffer_.size(); }

 private:
  Next Fail(NetstringError kind, std::string message);

  const size_t max_payload_;
  std::string buffer_;
  size_t records_ = 0;  // netstrings returned so far
  NetstringError error_kind_ = NetstringError::kNone;
  absl::Status error_;
};

// `LEN:payload,`.
std::string EncodeNetstring(std::string_view payload);

struct SocketmapRequest {
  std::string name;  // the map name Postfix was configured with
  std::string key;
};

// Splits `NAME key` at the first space. Errors (InvalidArgument): no space,
// empty name, empty key. These are answered with PERM, not a closed
// connection: the netstring framing is intact.
absl::StatusOr<SocketmapRequest> ParseSocketmapRequest(
    std::string_view payload);

struct SocketmapAnswer {
  std::string reply;  // the netstring payload, e.g. "OK valid"
  absl::Duration delay;
  // Bounded label for metrics, as PolicyAnswer::outcome.
  std::string_view outcome;
};

// Maps rcptguard's answer for relay_recipient_maps:
//   VALID → "OK valid"; UNKNOWN → "NOTFOUND " (Postfix: 550 5.1.1 User
//   unknown in relay recipient table); monitor_only → "OK monitor";
//   UNKNOWN with a 4xx reply (stale directory) → "TEMP ...";
//   NOT_SERVED → "TEMP ..." (relay_domains lists a domain the service does
//   not serve: a configuration mismatch, deferred rather than bounced);
//   MALFORMED → "NOTFOUND ";
//   client TEMPFAIL → "TEMP ..."; client REJECT → "NOTFOUND ";
//   client TARPIT → the above after delay_ms (at most max_delay);
//   no answer → "OK fail-open" under fail_open (NOTFOUND would reject
//   every recipient: the opposite of failing open), "TEMP ..." under
//   tempfail (Postfix: 451 4.3.0).
SocketmapAnswer AnswerSocketmap(const client::RecipientResult& result,
                                absl::Duration max_delay);

}  // namespace rcptguard::postfix

#endif  // RCPTGUARD_CLIENTS_POSTFIX_SOCKETMAP_PROTOCOL_H_
