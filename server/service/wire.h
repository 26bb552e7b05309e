// Messages in and out of gRPC byte buffers, with a clear error for a request
// that is not a valid message.
//
// The validation service reads its requests as raw bytes and parses them
// itself: gRPC's generated handlers answer an unparsable request with
// UNIMPLEMENTED and no message, which a client takes for an outage. Here a
// request that does not parse gets INVALID_ARGUMENT naming the field and
// what is wrong with it ("context.session_id: not valid UTF-8"), so the
// caller knows the request, not the service, is at fault.
//
// Thread safety: pure functions, except that InstallProtobufLogHandler
// changes a process-wide setting.
#ifndef RCPTGUARD_SERVER_SERVICE_WIRE_H_
#define RCPTGUARD_SERVER_SERVICE_WIRE_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/byte_buffer.h"
#include "rcptguard/internal/batch_frame.pb.h"

namespace rcptguard::service {

// Parses `bytes` into `message` (cleared first). Errors: InvalidArgument
// "not a valid rcptguard.v1.ValidateRequest: <field>: <what>".
absl::Status ParseMessage(const grpc::ByteBuffer& bytes,
                          google::protobuf::Message* message);

// Why `data` does not parse as `descriptor`: the first field that is wrong
// ("recipients[2]: wire type 0, expected length-delimited",
// "context.client_ip: not valid UTF-8", "truncated at octet 17"), or an
// empty string when its wire format looks well-formed.
std::string DescribeMalformed(std::string_view data,
                              const google::protobuf::Descriptor* descriptor);

// More requests than this in one ValidateBatchRequest end the stream: a
// batch is answered within one callback, and its answer is buffered whole.
inline constexpr int kMaxBatchRequests = 1000;

// The error for `data` that is not a valid `descriptor`: InvalidArgument
// "not a valid <full name>: <what DescribeMalformed finds>" (or "does not
// parse").
absl::Status MalformedError(std::string_view data,
                            const google::protobuf::Descriptor* descriptor);

// Splits a serialized rcptguard.v1.ValidateBatchRequest into `frame`
// without parsing its requests (a request that does not parse is its own
// problem, answered in its own result): protobuf's own parser reads the
// message as a ValidateBatchFrame, so exactly what it accepts is accepted.
// Errors: InvalidArgument "not a valid rcptguard.v1.ValidateBatchRequest:
// <what>" (truncated, a field of the wrong wire type) or
// "ValidateBatchRequest.requests: more than 1000 requests in one message".
absl::Status SplitBatchRequest(std::string_view data,
                               internal::ValidateBatchFrame* frame);

// A protobuf arena whose first block is a per-thread buffer: a request
// parsed, answered and serialized within one completion on one thread
// allocates nothing. The buffer starts at 16 KiB and, when a call needed
// more, grows to what it needed (at most kMaxBlockBytes), so the next
// large batch allocates nothing either: without that, each message of 100
// recipients or more took fresh blocks from malloc, which returned them to
// the kernel and faulted them in again (a quarter of the server's time at
// 16 requests of 100 recipients per message). Without an arena at all,
// every verdict's reply would be allocated and freed (a message's Clear()
// deletes its sub-messages). At most one per thread at a time (they would
// share the block).
class CallArena {
 public:
  static constexpr size_t kMaxBlockBytes = size_t{4} << 20;

  CallArena() { arena_.emplace(Options()); }
  ~CallArena();
  CallArena(const CallArena&) = delete;
  CallArena& operator=(const CallArena&) = delete;
  google::protobuf::Arena* get() { return &*arena_; }

 private:
  static google::protobuf::ArenaOptions Options();
  std::optional<google::protobuf::Arena> arena_;
};

// Serializes `message` into `bytes`.
absl::Status SerializeMessage(const google::protobuf::Message& message,
                              grpc::ByteBuffer* bytes);

// Routes libprotobuf's own log lines (e.g. one per string field with
// invalid UTF-8 that a client sends) through our log, at most one line per
// 10 seconds with the count of those left out: a client must not be able
// to flood the log.
void InstallProtobufLogHandler();

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_WIRE_H_
