#include "server/service/validation_service.h"

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/text.h"
#include "google/protobuf/arena.h"
#include "server/service/grpc_status.h"
#include "server/service/handler_support.h"
#include "server/service/stream_reactor.h"
#include "server/service/wire.h"

namespace rcptguard::service {
namespace {

// Malformed requests are logged at most once every 10 seconds, with the
// count of those left out (a client may send them in a loop).
void LogMalformed(const grpc::ServerContextBase& context,
                  const absl::Status& why) {
  static LogLimiter* const limiter = new LogLimiter(10);
  int64_t left_out = 0;
  if (!limiter->Allow(&left_out)) return;
  LogWarning("request_malformed", {{"reason", ToStd(why.message())},
                                   {"peer", context.peer()},
                                   {"similar_left_out", left_out}});
}

// A protobuf arena whose first block is a per-thread buffer: a Validate
// (parsed, answered and serialized within one callback on one thread)
// allocates nothing for a request and answer of about 100 recipients;
// larger ones grow the arena, and the arena frees what it grew.
class CallArena {
 public:
  CallArena() : arena_(Options()) {}
  google::protobuf::Arena* get() { return &arena_; }

 private:
  static google::protobuf::ArenaOptions Options() {
    alignas(16) static thread_local char block[16384];
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = sizeof(block);
    return options;
  }
  google::protobuf::Arena arena_;
};

}  // namespace

RecipientValidationService::RecipientValidationService(
    const Validator* validator, metrics::ServerMetrics* metrics,
    const AccessPolicy* access, RateLimiter* limiter,
    const StreamLimits& limits)
    : validator_(validator),
      metrics_(metrics),
      access_(access),
      limiter_(limiter),
      limits_(limits),
      streams_(limits.max_streams_per_peer, limits.max_streams),
      budget_(limits.max_buffered_response_bytes) {}

absl::StatusOr<std::string> RecipientValidationService::Identify(
    const grpc::ServerContextBase& context) const {
  if (access_ == nullptr) return std::string();
  absl::StatusOr<std::string> who =
      access_->Authorize(context, Role::kValidate);
  if (!who.ok()) return Refuse(metrics_, context, who.status());
  return who;
}

absl::Status RecipientValidationService::Charge(
    const grpc::ServerContextBase& context, const std::string& identity,
    int recipients) const {
  if (limiter_ == nullptr ||
      limiter_->Admit(identity, static_cast<uint32_t>(recipients))) {
    return absl::OkStatus();
  }
  return Refuse(metrics_, context,
                absl::ResourceExhaustedError(absl::StrCat(
                    "identity \"", SafeText(identity, 128),
                    "\" is over its recipient budget "
                    "(limits.recipients_per_second_per_identity); slow "
                    "down")));
}

absl::Status RecipientValidationService::Parse(
    const grpc::ServerContextBase& context, const grpc::ByteBuffer& bytes,
    google::protobuf::Message* request) const {
  absl::Status status = ParseMessage(bytes, request);
  // Counted with the call's status code (INVALID_ARGUMENT).
  if (!status.ok()) LogMalformed(context, status);
  return status;
}

grpc::ServerUnaryReactor* RecipientValidationService::Validate(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  // Runs on gRPC's callback thread: parsing, the lookup and the harvest
  // update take microseconds and never block on I/O.
  CallTimer timer(metrics_, metrics::Method::kValidate);
  CallArena arena;
  auto* request =
      google::protobuf::Arena::CreateMessage<v1::ValidateRequest>(arena.get());
  auto* response =
      google::protobuf::Arena::CreateMessage<v1::ValidateResponse>(arena.get());
  absl::StatusOr<std::string> identity = Identify(*context);
  absl::Status status = identity.status();
  if (status.ok()) status = Parse(*context, *request_bytes, request);
  if (status.ok()) {
    status = Charge(*context, *identity, request->recipients_size());
  }
  if (status.ok()) status = validator_->Validate(*request, response, *identity);
  if (status.ok() && draining()) response->set_draining(true);
  if (status.ok()) status = SerializeMessage(*response, response_bytes);
  timer.Done(status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* RecipientValidationService::GetServedDomains(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes) {
  CallTimer timer(metrics_, metrics::Method::kGetServedDomains);
  v1::GetServedDomainsRequest request;
  v1::ServedDomains response;
  // Edges (validate) need the list for their failure policy; readers may
  // see it in Admin.GetStatus anyway.
  absl::Status status = absl::OkStatus();
  if (access_ != nullptr) {
    status = access_->Authorize(*context, Role::kValidate).status();
    if (status.code() == absl::StatusCode::kPermissionDenied) {
      status = access_->Authorize(*context, Role::kRead).status();
    }
    if (!status.ok()) status = Refuse(metrics_, *context, status);
  }
  if (status.ok()) status = ParseMessage(*request_bytes, &request);
  if (status.ok()) status = validator_->ServedDomains(&response);
  if (status.ok()) status = SerializeMessage(response, response_bytes);
  timer.Done(status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
RecipientValidationService::ValidateStream(
    grpc::CallbackServerContext* context) {
  return new StreamReactor(this, context);
}

}  // namespace rcptguard::service

namespace rcptguard::service {

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
RecipientValidationService::ValidateBatchStream(
    grpc::CallbackServerContext* context) {
  return new StreamReactor(this, context, /*batch=*/true);
}

}  // namespace rcptguard::service
