#include "server/service/generic_calls.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/text.h"
#include "grpc/health/v1/health.pb.h"
#include "grpc/reflection/v1/reflection.pb.h"
#include "server/service/grpc_status.h"
#include "server/service/wire.h"

namespace rcptguard::service {
namespace {

namespace hv1 = ::grpc::health::v1;
namespace rv1 = ::grpc::reflection::v1;

constexpr std::string_view kAdminPrefix = "/rcptguard.v1.Admin/";
constexpr std::string_view kCheck = "/grpc.health.v1.Health/Check";
constexpr std::string_view kWatch = "/grpc.health.v1.Health/Watch";
// v1alpha's messages are v1's, field for field.
constexpr std::string_view kReflectionV1 =
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
constexpr std::string_view kReflectionV1alpha =
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

hv1::HealthCheckResponse::ServingStatus ToServingStatus(bool serving) {
  return serving ? hv1::HealthCheckResponse::SERVING
                 : hv1::HealthCheckResponse::NOT_SERVING;
}

}  // namespace

// ---- Health ----

void Health::Set(bool serving) {
  absl::MutexLock lock(&mu_);
  if (!shut_down_) SetLocked(serving);
}

void Health::ShutDown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  SetLocked(false);
}

void Health::SetLocked(bool serving) {
  if (serving_ == serving) return;
  serving_ = serving;
  for (Watcher* w : watchers_) w->Push(serving);
}

bool Health::serving() const {
  absl::MutexLock lock(&mu_);
  return serving_;
}

void Health::EndWatches() {
  absl::MutexLock lock(&mu_);
  ended_ = true;
  for (Watcher* w : watchers_) w->End();
}

void Health::Add(Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.push_back(watcher);
  watcher->Push(serving_);
  if (ended_) watcher->End();
}

void Health::Remove(Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  std::erase(watchers_, watcher);
}

bool Health::Knows(std::string_view service) {
  return service.empty() || service == "rcptguard.v1.RecipientValidation";
}

// ---- One generic call ----

// Awaited on a queue; when it arrives, served by the queue's thread (or,
// for Admin, the worker), and deleted after its last completion: every
// operation started counts one pending completion, and so does the "done"
// notification that gRPC gives every call that started.
//
// Thread safety: completions come from the call's queue; Push and End come
// from any thread (Health), the Admin answer from the worker; the state
// they share is guarded by mu_.
class GenericCalls::Call final : public Health::Watcher {
 public:
  static void Await(GenericCalls* calls, CallQueues* queues,
                    grpc::ServerCompletionQueue* queue) {
    auto* call = new Call(calls, queues, queue);
    call->context_.AsyncNotifyWhenDone(&call->done_);
    if (!queues->Request([&] {
          calls->service_.RequestCall(&call->context_, &call->stream_, queue,
                                      queue, &call->started_);
        })) {
      delete call;
    }
  }

  void Push(bool serving) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    unsent_ = serving;
    WriteStatusLocked();
  }

  void End() override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ended_ = true;
    WriteStatusLocked();
  }

 private:
  enum class Kind { kUnimplemented, kAdmin, kCheck, kWatch, kReflection };

  Call(GenericCalls* calls, CallQueues* queues,
       grpc::ServerCompletionQueue* queue)
      : calls_(calls), queues_(queues), live_(queues), queue_(queue) {}

  void OnStarted(bool ok) {
    if (!ok) {  // the server shuts down: no call came, no done notification
      delete this;
      return;
    }
    Await(calls_, queues_, queue_);  // the next call
    {
      absl::MutexLock lock(&mu_);
      pending_ = 1;  // the done notification
    }
    const std::string& method = context_.method();
    const Options& o = calls_->options_;
    if (o.admin != nullptr &&
        std::string_view(method).starts_with(kAdminPrefix)) {
      kind_ = Kind::kAdmin;
    } else if (method == kCheck) {
      kind_ = Kind::kCheck;
    } else if (method == kWatch) {
      kind_ = Kind::kWatch;
    } else if (o.reflection != nullptr &&
               (method == kReflectionV1 || method == kReflectionV1alpha)) {
      kind_ = Kind::kReflection;
    }
    if (kind_ == Kind::kUnimplemented) {
      Finish(absl::UnimplementedError(
          absl::StrCat(o.unimplemented, ": ", SafeText(method, 128))));
    } else {
      Read();
    }
  }

  void OnRead(bool ok) {
    if (!ok) {
      // Reflection: the client is done asking. Otherwise a request never
      // came (or the call is cancelled, and this Finish fails).
      Finish(kind_ == Kind::kReflection
                 ? absl::OkStatus()
                 : absl::InvalidArgumentError("no request message"));
      Release();
      return;
    }
    bool worker_has_request = false;
    switch (kind_) {
      case Kind::kAdmin: {
        Hold();  // until the worker has answered
        const bool posted = calls_->Post([this] {
          grpc::ByteBuffer out;
          const absl::Status status = calls_->options_.admin->Answer(
              context_.method(), context_, in_, &out);
          if (status.ok()) {
            WriteAndFinish(std::move(out));
          } else {
            Finish(status);
          }
          Release();
        });
        if (posted) {
          worker_has_request = true;
        } else {
          // The request came as the server stopped; the hold taken for
          // the worker is this Finish's.
          stream_.Finish(ToGrpcStatus(absl::UnavailableError(
                             "the server is shutting down")),
                         &finished_);
        }
        break;
      }
      case Kind::kCheck: {
        hv1::HealthCheckRequest request;
        absl::Status status = ParseMessage(in_, &request);
        if (status.ok() && !Health::Knows(request.service())) {
          status = absl::NotFoundError(absl::StrCat(
              "unknown service: ", SafeText(request.service(), 128)));
        }
        hv1::HealthCheckResponse response;
        response.set_status(ToServingStatus(calls_->health_->serving()));
        grpc::ByteBuffer out;
        if (status.ok()) status = SerializeMessage(response, &out);
        if (status.ok()) {
          WriteAndFinish(std::move(out));
        } else {
          Finish(status);
        }
        break;
      }
      case Kind::kWatch: {
        hv1::HealthCheckRequest request;
        const absl::Status status = ParseMessage(in_, &request);
        if (!status.ok()) {
          Finish(status);
        } else {
          if (!Health::Knows(request.service())) {
            // grpc.health.v1: say so once, and keep the stream open (it
            // still ends at shutdown).
            absl::MutexLock lock(&mu_);
            unknown_service_ = true;
          }
          watching_ = true;
          calls_->health_->Add(this);
        }
        break;
      }
      case Kind::kReflection: {
        rv1::ServerReflectionRequest request;
        absl::Status status = ParseMessage(in_, &request);
        rv1::ServerReflectionResponse response;
        grpc::ByteBuffer out;
        if (status.ok()) {
          calls_->options_.reflection->Answer(request, &sent_files_, &response);
          status = SerializeMessage(response, &out);
        }
        if (status.ok()) {
          Write(std::move(out));
        } else {
          Finish(status);
        }
        break;
      }
      case Kind::kUnimplemented:
        break;
    }
    if (!worker_has_request) in_.Clear();  // else the worker's until it answers
    Release();
  }

  void OnWritten(bool ok) {
    if (kind_ == Kind::kReflection) {
      if (ok) Read();  // the next question (a failed write: the call is over)
    } else {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (ok) WriteStatusLocked();
    }
    Release();
  }

  void OnFinished(bool /*ok*/) { Release(); }

  void OnDone(bool /*ok*/) {
    // No Push or End may run once this returns.
    if (watching_) calls_->health_->Remove(this);
    Release();
  }

  // Watch: writes the newest status not yet sent, one write at a time;
  // once ended, finishes after the last write.
  void WriteStatusLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finishing_) return;
    if (ended_) {
      finishing_ = true;
      StartLocked();
      stream_.Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                  "the server is shutting down"),
                     &finished_);
      return;
    }
    hv1::HealthCheckResponse response;
    if (unknown_service_) {
      if (sent_.has_value()) return;
      response.set_status(hv1::HealthCheckResponse::SERVICE_UNKNOWN);
      sent_ = false;
    } else {
      if (!unsent_.has_value() || unsent_ == sent_) return;
      response.set_status(ToServingStatus(*unsent_));
      sent_ = unsent_;
    }
    if (!SerializeMessage(response, &out_).ok()) return;
    writing_ = true;
    StartLocked();
    stream_.Write(out_, &written_);
  }

  // Operations; each counts one pending completion.
  void Read() {
    Hold();
    stream_.Read(&in_, &read_);
  }
  void Write(grpc::ByteBuffer out) {
    Hold();
    out_ = std::move(out);
    stream_.Write(out_, &written_);
  }
  void WriteAndFinish(grpc::ByteBuffer out) {
    Hold();
    out_ = std::move(out);
    stream_.WriteAndFinish(out_, grpc::WriteOptions(), grpc::Status::OK,
                           &finished_);
  }
  void Finish(const absl::Status& status) {
    Hold();
    stream_.Finish(ToGrpcStatus(status), &finished_);
  }

  void Hold() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    StartLocked();
  }
  void StartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { ++pending_; }
  // One pending completion handled; the last one deletes the call.
  void Release() ABSL_LOCKS_EXCLUDED(mu_) {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      last = --pending_ == 0;
    }
    if (last) delete this;
  }

  GenericCalls* const calls_;
  CallQueues* const queues_;
  // Counts this call (call_queues.h); destroyed after its gRPC objects.
  CallQueues::Live live_;
  grpc::ServerCompletionQueue* const queue_;
  grpc::GenericServerContext context_;
  grpc::GenericServerAsyncReaderWriter stream_{&context_};
  Op<Call> started_{this, &Call::OnStarted};
  Op<Call> read_{this, &Call::OnRead};
  Op<Call> written_{this, &Call::OnWritten};
  Op<Call> finished_{this, &Call::OnFinished};
  Op<Call> done_{this, &Call::OnDone};
  // Set in OnStarted; then read only.
  Kind kind_ = Kind::kUnimplemented;
  // Used by one completion at a time (one read, one write in flight).
  grpc::ByteBuffer in_;
  std::vector<std::string> sent_files_;  // reflection
  bool watching_ = false;  // registered with Health (set before Add)

  absl::Mutex mu_;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  // The message being written (one write at a time: a Watch writes under
  // mu_, the others from their one completion in flight).
  grpc::ByteBuffer out_;
  // Watch.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool unknown_service_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<bool> unsent_ ABSL_GUARDED_BY(mu_);  // the newest status
  std::optional<bool> sent_ ABSL_GUARDED_BY(mu_);    // the last written
};

// ---- GenericCalls ----

GenericCalls::GenericCalls(Options options, Health* health)
    : options_(std::move(options)), health_(health) {
  if (options_.admin != nullptr) worker_ = std::thread([this] { RunWorker(); });
}

GenericCalls::~GenericCalls() { StopWorker(); }

void GenericCalls::Register(grpc::ServerBuilder* builder) {
  builder->RegisterAsyncGenericService(&service_);
}

void GenericCalls::Serve(CallQueues* queues,
                         grpc::ServerCompletionQueue* queue) {
  Call::Await(this, queues, queue);
}

bool GenericCalls::Post(std::function<void()> work) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  work_.push_back(std::move(work));
  return true;
}

void GenericCalls::RunWorker() {
  while (true) {
    std::function<void()> work;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](GenericCalls* c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(c->mu_) {
            return !c->work_.empty() || c->stopping_;
          },
          this));
      if (work_.empty()) return;  // stopping, and nothing left
      work = std::move(work_.front());
      work_.pop_front();
    }
    work();
  }
}

void GenericCalls::StopWorker() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

}  // namespace rcptguard::service
