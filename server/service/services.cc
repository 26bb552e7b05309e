#include "server/service/services.h"

#include <array>
#include <atomic>
#include <optional>

#include "google/protobuf/arena.h"

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/strings.h"
#include "common/log.h"
#include "common/text.h"
#include "server/service/grpc_status.h"
#include "server/service/proto_enums.h"
#include "server/service/proto_time.h"
#include "server/service/wire.h"

namespace rcptguard::service {
namespace {

// Times one call (or one stream message) and records it on Done().
class CallTimer {
 public:
  CallTimer(metrics::ServerMetrics* metrics, metrics::Method method)
      : metrics_(metrics), method_(method), start_(absl::Now()) {}
  grpc::Status Done(grpc::Status status) {
    if (metrics_ != nullptr) {
      metrics_->RecordRequest(
          method_, static_cast<absl::StatusCode>(status.error_code()),
          absl::Now() - start_);
    }
    return status;
  }

 private:
  metrics::ServerMetrics* const metrics_;
  const metrics::Method method_;
  const absl::Time start_;
};

// Refusals are logged at most once a second per caller (a client without
// rights may call in a loop; one looping client must not hide another's
// refusals); the metric counts every one. Callers are told apart by
// identity or peer host; at most kMaxKeys are remembered at once.
class RefusalLogLimiter {
 public:
  bool ShouldLog(const std::string& key, int64_t now_second) {
    absl::MutexLock lock(&mu_);
    if (last_.size() >= kMaxKeys) last_.clear();
    int64_t& last = last_[key];
    if (last == now_second) return false;
    last = now_second;
    return true;
  }

 private:
  static constexpr size_t kMaxKeys = 4096;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> last_ ABSL_GUARDED_BY(mu_);
};

void LogRefusal(const grpc::ServerContextBase& context, const absl::Status& why) {
  static RefusalLogLimiter* const limiter = new RefusalLogLimiter();
  std::string identity;
  if (context.auth_context() != nullptr &&
      context.auth_context()->IsPeerAuthenticated()) {
    identity = IdentityFromAuthContext(*context.auth_context()).value_or("");
  }
  const std::string peer = context.peer();
  if (!limiter->ShouldLog(SafeText(PeerKey(identity, peer), 128),
                          absl::ToUnixSeconds(absl::Now()))) {
    return;
  }
  LogWarning("call_refused", {{"code", absl::StatusCodeToString(why.code())},
                              {"reason", ToStd(why.message())},
                              {"peer", peer}});
}

// Counts and logs a refusal and returns it.
absl::Status Refuse(metrics::ServerMetrics* metrics,
                    const grpc::ServerContextBase& context,
                    absl::Status why) {
  if (metrics != nullptr) {
    metrics->RecordAccessRefused(
        why.code() == absl::StatusCode::kUnauthenticated
            ? metrics::AccessRefusal::kUnauthenticated
        : why.code() == absl::StatusCode::kPermissionDenied
            ? metrics::AccessRefusal::kPermissionDenied
            : metrics::AccessRefusal::kRateLimited);
  }
  LogRefusal(context, why);
  return why;
}

// Malformed requests are logged at most once every 10 seconds, with the
// count of those left out (a client may send them in a loop).
void LogMalformed(const grpc::ServerContextBase& context,
                  const absl::Status& why) {
  static std::atomic<int64_t> last_window{0};
  static std::atomic<int64_t> skipped{0};
  const int64_t window = absl::ToUnixSeconds(absl::Now()) / 10;
  int64_t last = last_window.load(std::memory_order_relaxed);
  if (window == last || !last_window.compare_exchange_strong(
                            last, window, std::memory_order_relaxed)) {
    skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  LogWarning("request_malformed",
             {{"reason", ToStd(why.message())},
              {"peer", context.peer()},
              {"similar_left_out",
               skipped.exchange(0, std::memory_order_relaxed)}});
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
    const AccessPolicy* access, RateLimiter* limiter, const StreamLimits& limits)
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
  absl::StatusOr<std::string> who = access_->Authorize(context, Role::kValidate);
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
  if (status.ok()) status = SerializeMessage(*response, response_bytes);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(timer.Done(ToGrpcStatus(status)));
  return reactor;
}

// One ValidateStream. Requests are read and answered one after another, in
// order; the next read starts as soon as a request is answered, while its
// answer is still being written, so a client that sends several requests
// before reading their answers (pipelining) has them all in flight: reads
// and writes overlap and gRPC carries several messages per system call.
// Answers are serialized as soon as they are built and wait as bytes.
// Reading pauses (backpressure) while an answer waits and any of these
// holds: kMaxQueued answers wait, the stream's waiting answers reach
// limits.max_stream_buffer_bytes, or all streams' waiting answers reach
// limits.max_buffered_response_bytes; it resumes as the client reads. One
// answer may always wait, so every stream makes progress. A refused
// request ends the stream with its error once the answers before it are
// written. Deletes itself when done.
//
// Thread safety: gRPC may run OnReadDone and OnWriteDone at the same time
// on different threads; the state they share is guarded by mu_, and the
// gRPC calls (StartRead, StartWrite, Finish) are made after releasing it.
class RecipientValidationService::StreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Answers that may wait to be written before reading pauses.
  static constexpr size_t kMaxQueued = 64;

  StreamReactor(const RecipientValidationService* service,
                grpc::CallbackServerContext* context)
      : service_(service), context_(context) {
    std::string identity;
    if (context->auth_context() != nullptr &&
        context->auth_context()->IsPeerAuthenticated()) {
      identity = IdentityFromAuthContext(*context->auth_context()).value_or("");
    }
    peer_ = PeerKey(identity, context->peer());
    absl::Status open = service_->streams_.Open(peer_);
    if (!open.ok()) {
      counted_ = false;
      {
        absl::MutexLock lock(&mu_);
        reading_ = false;
        finished_ = true;
      }
      Finish(ToGrpcStatus(Refuse(service_->metrics_, *context, open)));
      return;
    }
    StartRead(&request_bytes_);  // reading_ starts true
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side, or the call is cancelled
      Actions next;
      {
        absl::MutexLock lock(&mu_);
        reading_ = false;
        read_closed_ = true;
        next = NextLocked();
      }
      Run(next);
      return;
    }
    // Each message is recorded as one ValidateStream request. Only this
    // reaction touches request_, response_, identity_ and the ring slot
    // after the queued ones (free: reading stops while the ring is full):
    // there is one read at a time.
    size_t slot;
    {
      absl::MutexLock lock(&mu_);
      slot = (head_ + queued_) % kMaxQueued;
    }
    ++messages_;
    CallTimer timer(service_->metrics_, metrics::Method::kValidateStream);
    // The peer's certificate cannot change within a stream: authorize at
    // the first message only; charge the budget for every message.
    if (!identity_.has_value()) identity_ = service_->Identify(*context_);
    absl::Status status = identity_->status();
    if (status.ok()) status = service_->Parse(*context_, request_bytes_, &request_);
    request_bytes_.Clear();
    if (status.ok()) {
      status = service_->Charge(*context_, **identity_,
                                request_.recipients_size());
    }
    if (status.ok()) {
      response_.Clear();
      status = service_->validator_->Validate(request_, &response_, **identity_);
    }
    uint64_t size = 0;
    if (status.ok()) {
      status = SerializeMessage(response_, &ring_[slot]);
      size = ring_[slot].Length();
    }
    timer.Done(ToGrpcStatus(status));
    Actions next;
    {
      absl::MutexLock lock(&mu_);
      reading_ = false;
      if (!status.ok()) {
        // A bad message ends the stream with its error: the edge learns
        // which request was refused (by id, or by its place in the stream
        // when it did not parse) and why.
        refusal_ = ToGrpcStatus(absl::Status(
            status.code(),
            status.code() == absl::StatusCode::kInvalidArgument &&
                    absl::StartsWith(status.message(), "not a valid")
                ? absl::StrCat("message ", messages_, " of the stream: ",
                               status.message())
                : absl::StrCat("request_id ", request_.request_id(), ": ",
                               status.message())));
      } else if (!broken_) {
        sizes_[slot] = size;
        queued_bytes_ += size;
        service_->budget_.Add(size);
        ++queued_;
      }
      next = NextLocked();
    }
    Run(next);
  }

  void OnWriteDone(bool ok) override {
    Actions next;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (ok) {
        Dequeue(1);
      } else {  // the client went away: nothing more can be written
        broken_ = true;
        Dequeue(queued_);
      }
      next = NextLocked();
    }
    Run(next);
  }

  void OnDone() override {
    {
      absl::MutexLock lock(&mu_);
      Dequeue(queued_);
    }
    if (counted_) service_->streams_.Close(peer_);
    delete this;
  }

 private:
  // What to start once mu_ is released.
  struct Actions {
    grpc::ByteBuffer* write = nullptr;
    bool read = false;
    std::optional<grpc::Status> finish;
  };

  // Drops the `n` oldest waiting answers from the accounting.
  void Dequeue(size_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (size_t i = 0; i < n && queued_ > 0; ++i) {
      queued_bytes_ -= sizes_[head_];
      service_->budget_.Remove(sizes_[head_]);
      sizes_[head_] = 0;
      ring_[head_].Clear();
      head_ = (head_ + 1) % kMaxQueued;
      --queued_;
    }
  }

  // Decides the next operations from the state, and marks them started.
  Actions NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Actions next;
    if (finished_) return next;
    if (!writing_ && queued_ > 0) {
      writing_ = true;
      next.write = &ring_[head_];
    }
    const bool stop_reading = read_closed_ || refusal_.has_value() || broken_;
    const bool full =
        queued_ > 0 &&
        (queued_ >= kMaxQueued ||
         queued_bytes_ >= service_->limits_.max_stream_buffer_bytes ||
         service_->budget_.over());
    if (!reading_ && !stop_reading && !full) {
      reading_ = true;
      next.read = true;
    }
    // Finish once nothing is in flight and nothing more will be read.
    if (stop_reading && !reading_ && !writing_ && queued_ == 0) {
      finished_ = true;
      next.finish = refusal_.has_value() && !broken_ ? *refusal_
                                                     : grpc::Status::OK;
    }
    return next;
  }

  void Run(const Actions& next) {
    if (next.write != nullptr) StartWrite(next.write);
    if (next.read) StartRead(&request_bytes_);
    if (next.finish.has_value()) Finish(*next.finish);
  }

  const RecipientValidationService* const service_;
  grpc::CallbackServerContext* const context_;
  // Constant after construction.
  std::string peer_;     // what the stream is counted under
  bool counted_ = true;  // streams_.Open succeeded

  // Used by OnReadDone only (one read at a time).
  // The caller's identity or its refusal, from the first message on.
  std::optional<absl::StatusOr<std::string>> identity_;
  grpc::ByteBuffer request_bytes_;
  v1::ValidateRequest request_;
  v1::ValidateResponse response_;
  uint64_t messages_ = 0;  // read so far

  // Serialized answers not yet written: ring_[head_] and the queued_ - 1
  // after it (circularly), oldest first; ring_[head_] is being written when
  // writing_. Not guarded: a slot belongs to OnReadDone while it builds the
  // answer in it, then to the queue, then to gRPC while written.
  std::array<grpc::ByteBuffer, kMaxQueued> ring_;

  absl::Mutex mu_;
  std::array<uint64_t, kMaxQueued> sizes_ ABSL_GUARDED_BY(mu_) = {};
  uint64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t head_ ABSL_GUARDED_BY(mu_) = 0;
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;
  bool reading_ ABSL_GUARDED_BY(mu_) = true;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;  // no more requests
  bool broken_ ABSL_GUARDED_BY(mu_) = false;       // a write failed
  bool finished_ ABSL_GUARDED_BY(mu_) = false;     // Finish was called
  // The status a refused request ends the stream with.
  std::optional<grpc::Status> refusal_ ABSL_GUARDED_BY(mu_);
};

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
RecipientValidationService::ValidateStream(
    grpc::CallbackServerContext* context) {
  return new StreamReactor(this, context);
}

grpc::Status AdminService::GetStatusImpl(grpc::ServerContext* context,
                                     const v1::GetStatusRequest* request,
                                     v1::GetStatusResponse* response) {
  manager_->FillStatus(response);
  v1::HarvestStatus* h = response->mutable_harvest();
  h->set_enabled(detector_ != nullptr);
  if (detector_ == nullptr) return grpc::Status::OK;
  h->set_observe_only(observe_only_);
  const harvest::DetectorStats stats = detector_->Stats();
  h->set_tracked_keys(stats.tracked_keys);
  h->set_max_tracked_keys(stats.max_tracked_keys);
  h->set_evictions(stats.evictions);
  h->set_active_penalties(stats.active_penalties);
  h->set_domains_under_attack(stats.domains_under_attack);
  const std::vector<harvest::DomainStatus> domains =
      detector_->DomainStatuses();
  for (int i = 0; i < response->domains_size() &&
                  static_cast<size_t>(i) < domains.size();
       ++i) {
    response->mutable_domains(i)->set_under_attack(domains[i].under_attack);
    response->mutable_domains(i)->set_probing_clients(
        domains[i].distinct_clients);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::ListOffendersImpl(
    grpc::ServerContext* context, const v1::ListOffendersRequest* request,
    v1::ListOffendersResponse* response) {
  if (detector_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "harvest detection is disabled");
  }
  if (request->limit() > 1000) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "limit: must be at most 1000");
  }
  const size_t limit = request->limit() == 0 ? 20 : request->limit();
  for (const harvest::Offender& o : detector_->ListOffenders(limit)) {
    v1::Offender* out = response->add_offenders();
    out->set_key(o.key_text);
    out->set_valid(o.counts.valid);
    out->set_unknown(o.counts.unknown);
    out->set_not_served(o.counts.not_served);
    out->set_malformed(o.counts.malformed);
    *out->mutable_last_seen() = ToProtoTimestamp(o.last_seen);
    FillClientVerdict(o.verdict, out->mutable_verdict());
    out->set_observed_action(ToProtoClientAction(o.verdict.observed_action));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::ForgetClientImpl(grpc::ServerContext* context,
                                        const v1::ForgetClientRequest* request,
                                        v1::ForgetClientResponse* response) {
  if (detector_ == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "harvest detection is disabled");
  }
  absl::StatusOr<size_t> removed = detector_->Forget(request->client());
  if (!removed.ok()) return ToGrpcStatus(removed.status());
  response->set_removed(*removed);
  LogInfo("harvest_forget", {{"client", request->client()},
                             {"removed", *removed},
                             {"peer", context->peer()}});
  return grpc::Status::OK;
}

}  // namespace rcptguard::service

namespace rcptguard::service {

grpc::Status AdminService::ReloadImpl(grpc::ServerContext* context,
                                  const v1::ReloadRequest* request,
                                  v1::ReloadResponse* response) {
  LogInfo("admin_reload", {{"force", request->force() ? "true" : "false"},
                           {"peer", context->peer()}});
  absl::StatusOr<ReloadResult> result =
      manager_->Reload(request->force(), "admin");
  if (!result.ok()) return ToGrpcStatus(result.status());
  std::shared_ptr<const directory::Directory> dir = manager_->handle()->Get();
  if (dir != nullptr) {
    response->set_directory_version(dir->info().version);
    response->set_total_addresses(dir->address_count());
  }
  response->set_changed(result->kind == ReloadResult::Kind::kLoaded);
  return grpc::Status::OK;
}

}  // namespace rcptguard::service

namespace rcptguard::service {

grpc::Status AdminService::Authorize(const grpc::ServerContextBase& context,
                                     Role role) const {
  if (access_ == nullptr) return grpc::Status::OK;
  absl::StatusOr<std::string> who = access_->Authorize(context, role);
  if (who.ok()) return grpc::Status::OK;
  return ToGrpcStatus(Refuse(metrics_, context, who.status()));
}

grpc::Status AdminService::GetStatus(grpc::ServerContext* context,
                                     const v1::GetStatusRequest* request,
                                     v1::GetStatusResponse* response) {
  CallTimer timer(metrics_, metrics::Method::kGetStatus);
  if (grpc::Status s = Authorize(*context, Role::kRead); !s.ok()) {
    return timer.Done(s);
  }
  return timer.Done(GetStatusImpl(context, request, response));
}

grpc::Status AdminService::ListOffenders(
    grpc::ServerContext* context, const v1::ListOffendersRequest* request,
    v1::ListOffendersResponse* response) {
  CallTimer timer(metrics_, metrics::Method::kListOffenders);
  if (grpc::Status s = Authorize(*context, Role::kRead); !s.ok()) {
    return timer.Done(s);
  }
  return timer.Done(ListOffendersImpl(context, request, response));
}

grpc::Status AdminService::ForgetClient(grpc::ServerContext* context,
                                        const v1::ForgetClientRequest* request,
                                        v1::ForgetClientResponse* response) {
  CallTimer timer(metrics_, metrics::Method::kForgetClient);
  if (grpc::Status s = Authorize(*context, Role::kAdmin); !s.ok()) {
    return timer.Done(s);
  }
  return timer.Done(ForgetClientImpl(context, request, response));
}

grpc::Status AdminService::Reload(grpc::ServerContext* context,
                                  const v1::ReloadRequest* request,
                                  v1::ReloadResponse* response) {
  CallTimer timer(metrics_, metrics::Method::kReload);
  if (grpc::Status s = Authorize(*context, Role::kAdmin); !s.ok()) {
    return timer.Done(s);
  }
  return timer.Done(ReloadImpl(context, request, response));
}

}  // namespace rcptguard::service
