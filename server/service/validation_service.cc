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
    v1::ValidateRequest* request) const {
  absl::Status status = ParseMessage(bytes, request);
  // Counted with the call's status code (INVALID_ARGUMENT).
  if (!status.ok()) LogMalformed(context, status);
  return status;
}

absl::Status RecipientValidationService::AnswerValidate(
    const grpc::ServerContextBase& context,
    const grpc::ByteBuffer& request_bytes,
    grpc::ByteBuffer* response_bytes) const {
  // Runs on the queue's thread: parsing, the lookup and the harvest update
  // take microseconds and never block on I/O.
  CallTimer timer(metrics_, metrics::Method::kValidate);
  CallArena arena;
  auto* request =
      google::protobuf::Arena::CreateMessage<v1::ValidateRequest>(arena.get());
  auto* response =
      google::protobuf::Arena::CreateMessage<v1::ValidateResponse>(arena.get());
  absl::StatusOr<std::string> identity = Identify(context);
  absl::Status status = identity.status();
  if (status.ok()) status = Parse(context, request_bytes, request);
  if (status.ok()) {
    status = Charge(context, *identity, request->recipients_size());
  }
  if (status.ok()) status = validator_->Validate(*request, response, *identity);
  if (status.ok() && draining()) response->set_draining(true);
  if (status.ok()) status = SerializeMessage(*response, response_bytes);
  timer.Done(status);
  return status;
}

absl::Status RecipientValidationService::AnswerServedDomains(
    const grpc::ServerContextBase& context,
    const grpc::ByteBuffer& request_bytes,
    grpc::ByteBuffer* response_bytes) const {
  CallTimer timer(metrics_, metrics::Method::kGetServedDomains);
  v1::GetServedDomainsRequest request;
  v1::ServedDomains response;
  // Edges (validate) need the list for their failure policy; readers may
  // see it in Admin.GetStatus anyway.
  absl::Status status = absl::OkStatus();
  if (access_ != nullptr) {
    status = access_->Authorize(context, Role::kValidate).status();
    if (status.code() == absl::StatusCode::kPermissionDenied) {
      status = access_->Authorize(context, Role::kRead).status();
    }
    if (!status.ok()) status = Refuse(metrics_, context, status);
  }
  if (status.ok()) status = ParseMessage(request_bytes, &request);
  if (status.ok()) status = validator_->ServedDomains(&response);
  if (status.ok()) status = SerializeMessage(response, response_bytes);
  timer.Done(status);
  return status;
}

// One Validate or GetServedDomains call: awaited on a queue, answered on
// arrival by the queue's thread, deleted once the answer is sent.
class RecipientValidationService::UnaryCall final {
 public:
  // What differs between the two methods.
  struct Method {
    void (RecipientValidationService::*request)(
        grpc::ServerContext*, grpc::ByteBuffer*,
        grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>*,
        grpc::CompletionQueue*, grpc::ServerCompletionQueue*, void*);
    absl::Status (RecipientValidationService::*answer)(
        const grpc::ServerContextBase&, const grpc::ByteBuffer&,
        grpc::ByteBuffer*) const;
  };

  // Awaits the next call of `method` on `queue`.
  static void Await(RecipientValidationService* service, CallQueues* queues,
                    grpc::ServerCompletionQueue* queue, const Method* method) {
    auto* call = new UnaryCall(service, queues, queue, method);
    if (!queues->Request([&] {
          (service->*method->request)(&call->context_, &call->request_,
                                      &call->responder_, queue, queue,
                                      &call->started_);
        })) {
      delete call;
    }
  }

 private:
  UnaryCall(RecipientValidationService* service, CallQueues* queues,
            grpc::ServerCompletionQueue* queue, const Method* method)
      : service_(service),
        queues_(queues),
        live_(queues),
        queue_(queue),
        method_(method) {}

  void OnStarted(bool ok) {
    if (!ok) {  // the server shuts down: no call came
      delete this;
      return;
    }
    Await(service_, queues_, queue_, method_);
    const absl::Status status =
        (service_->*method_->answer)(context_, request_, &response_);
    request_.Clear();
    if (status.ok()) {
      responder_.Finish(response_, grpc::Status::OK, &finished_);
    } else {
      responder_.FinishWithError(ToGrpcStatus(status), &finished_);
    }
  }
  void OnFinished(bool /*ok*/) { delete this; }

  RecipientValidationService* const service_;
  CallQueues* const queues_;
  // Counts this call (call_queues.h); destroyed after its gRPC objects.
  CallQueues::Live live_;
  grpc::ServerCompletionQueue* const queue_;
  const Method* const method_;
  grpc::ServerContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_{&context_};
  Op<UnaryCall> started_{this, &UnaryCall::OnStarted};
  Op<UnaryCall> finished_{this, &UnaryCall::OnFinished};
};

void RecipientValidationService::Serve(CallQueues* queues,
                                       grpc::ServerCompletionQueue* queue) {
  static constexpr UnaryCall::Method kValidate = {
      &RecipientValidationService::RequestValidate,
      &RecipientValidationService::AnswerValidate};
  static constexpr UnaryCall::Method kServedDomains = {
      &RecipientValidationService::RequestGetServedDomains,
      &RecipientValidationService::AnswerServedDomains};
  UnaryCall::Await(this, queues, queue, &kValidate);
  UnaryCall::Await(this, queues, queue, &kServedDomains);
  StreamReactor::Await(this, queues, queue, /*batch=*/false);
  StreamReactor::Await(this, queues, queue, /*batch=*/true);
}

}  // namespace rcptguard::service
