// ValidateBatchStream: several ValidateRequests per stream message (group
// commit at the edge). The stream machinery (reads, writes, backpressure,
// limits per peer) is ValidateStream's (stream_reactor.h); this file
// answers one message: each request is parsed, charged, validated and
// recorded exactly as a unary Validate of it would be, and a request that
// fails gets its error in its own result while the others are answered.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/strings.h"
#include "google/protobuf/arena.h"
#include "server/service/handler_support.h"
#include "server/service/validation_service.h"
#include "server/service/wire.h"

namespace rcptguard::service {
namespace {

// The message's octets in one piece: the buffer's own slice when it has
// one, else a copy in `flat`.
std::string_view Flatten(const grpc::ByteBuffer& bytes,
                         std::vector<grpc::Slice>* slices, std::string* flat) {
  if (!bytes.Dump(slices).ok()) return {};
  if (slices->size() == 1) {
    const grpc::Slice& s = (*slices)[0];
    return std::string_view(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  for (const grpc::Slice& s : *slices) {
    flat->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return *flat;
}

// The unary Validate's error for a request that does not parse.
absl::Status Malformed(const grpc::ServerContextBase& context,
                       std::string_view data) {
  absl::Status status = MalformedError(data, v1::ValidateRequest::descriptor());
  static LogLimiter* const limiter = new LogLimiter(10);
  int64_t left_out = 0;
  if (limiter->Allow(&left_out)) {
    LogWarning("request_malformed", {{"reason", ToStd(status.message())},
                                     {"peer", context.peer()},
                                     {"in", "ValidateBatchStream"},
                                     {"similar_left_out", left_out}});
  }
  return status;
}

}  // namespace

absl::Status RecipientValidationService::AnswerBatch(
    const grpc::ServerContextBase& context, const std::string& identity,
    const grpc::ByteBuffer& bytes, grpc::ByteBuffer* answer) const {
  std::vector<grpc::Slice> slices;
  std::string flat;
  const std::string_view data = Flatten(bytes, &slices, &flat);
  CallArena call_arena;
  google::protobuf::Arena& arena = *call_arena.get();
  auto* frame =
      google::protobuf::Arena::CreateMessage<internal::ValidateBatchFrame>(
          &arena);
  absl::Status split = SplitBatchRequest(data, frame);
  if (!split.ok()) return split;

  auto* response =
      google::protobuf::Arena::CreateMessage<v1::ValidateBatchResponse>(&arena);
  response->set_batch_id(frame->batch_id());
  response->mutable_results()->Reserve(frame->requests_size());
  auto* request =
      google::protobuf::Arena::CreateMessage<v1::ValidateRequest>(&arena);
  for (const std::string& part : frame->requests()) {
    // Each request is one ValidateStream request in the metrics.
    CallTimer timer(metrics_, metrics::Method::kValidateStream);
    v1::ValidateBatchResult* result = response->add_results();
    request->Clear();
    absl::Status status;
    if (!request->ParseFromArray(part.data(), static_cast<int>(part.size()))) {
      status = Malformed(context, part);
    }
    if (status.ok())
      status = Charge(context, identity, request->recipients_size());
    if (status.ok()) {
      status =
          validator_->Validate(*request, result->mutable_response(), identity);
      if (status.ok() && draining()) {
        result->mutable_response()->set_draining(true);
      }
    }
    if (!status.ok()) {
      v1::ValidateBatchError* error = result->mutable_error();
      error->set_code(static_cast<int32_t>(status.code()));
      error->set_message(std::string(ToStd(status.message())));
    }
    timer.Done(status);
  }
  return SerializeMessage(*response, answer);
}

}  // namespace rcptguard::service
