#include "clients/cpp/client.h"

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "clients/cpp/stream_transport.h"
#include "common/pem.h"
#include "common/strings.h"
#include "common/text.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "rcptguard/v1/validation.grpc.pb.h"

namespace rcptguard::client {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      ToAbsl(s.error_message()));
}

// Identical contexts (and dry_run) share a batch. SmtpContext has no map
// fields, so its serialization is deterministic.
std::string BatchKey(const v1::SmtpContext& context, bool dry_run) {
  std::string key = context.SerializeAsString();
  key.push_back(dry_run ? '\1' : '\0');
  return key;
}

}  // namespace

void ClearInvalidContextText(v1::SmtpContext* context) {
  if (!IsValidUtf8(context->client_ip())) context->clear_client_ip();
  if (!IsValidUtf8(context->session_id())) context->clear_session_id();
  if (!IsValidUtf8(context->edge_id())) context->clear_edge_id();
}

absl::StatusOr<FailurePolicy> ParseFailurePolicy(std::string_view text) {
  const std::string t = absl::AsciiStrToLower(ToAbsl(text));
  if (t == "fail_open" || t == "fail-open") return FailurePolicy::kFailOpen;
  if (t == "tempfail") return FailurePolicy::kTempfail;
  return absl::InvalidArgumentError(absl::StrCat(
      "failure policy \"", ToAbsl(text), "\": expected fail_open or tempfail"));
}

std::string_view FailurePolicyName(FailurePolicy policy) {
  return policy == FailurePolicy::kFailOpen ? "fail_open" : "tempfail";
}

absl::StatusOr<Transport> ParseTransport(std::string_view text) {
  const std::string t = absl::AsciiStrToLower(ToAbsl(text));
  if (t == "unary") return Transport::kUnary;
  if (t == "stream") return Transport::kStream;
  if (t == "batch_stream" || t == "batch-stream") {
    return Transport::kBatchStream;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("transport \"", ToAbsl(text),
                   "\": expected unary, stream or batch_stream"));
}

std::string_view TransportName(Transport transport) {
  switch (transport) {
    case Transport::kUnary:
      return "unary";
    case Transport::kStream:
      return "stream";
    case Transport::kBatchStream:
      return "batch_stream";
  }
  return "unknown";
}

absl::Status ValidateOptions(const ClientOptions& o) {
  if (o.target.empty()) return absl::InvalidArgumentError("target: empty");
  if (o.deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("deadline: must be positive");
  }
  if (o.dry_run_attempts < 1 || o.dry_run_attempts > 10) {
    return absl::InvalidArgumentError("dry_run_attempts: must be 1..10");
  }
  if (o.retry_backoff < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("retry_backoff: must not be negative");
  }
  if (o.batch_window < absl::ZeroDuration() ||
      o.batch_window > absl::Milliseconds(10)) {
    return absl::InvalidArgumentError("batch_window: must be 0..10ms");
  }
  if (o.max_batch < 1 || o.max_batch > 1000) {
    return absl::InvalidArgumentError("max_batch: must be 1..1000");
  }
  if (o.tls.cert_file.empty() != o.tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls: cert_file and key_file go together");
  }
  if (!o.tls.enabled && (!o.tls.ca_file.empty() || !o.tls.cert_file.empty())) {
    return absl::InvalidArgumentError(
        "tls: CA or certificate files given but TLS is off");
  }
  if (o.stream_messages_in_flight < 1 || o.stream_messages_in_flight > 64) {
    return absl::InvalidArgumentError(
        "stream_messages_in_flight: must be 1..64");
  }
  if (o.max_requests_per_message < 1 || o.max_requests_per_message > 1000) {
    return absl::InvalidArgumentError(
        "max_requests_per_message: must be 1..1000");
  }
  if (o.max_reconnect_backoff < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError(
        "max_reconnect_backoff: must be at least 100ms");
  }
  return absl::OkStatus();
}

class Client::Impl {
 public:
  Impl(const ClientOptions& options, std::shared_ptr<grpc::Channel> channel)
      : options_(options),
        channel_(std::move(channel)),
        stub_(v1::RecipientValidation::NewStub(channel_)),
        tick_(std::clamp(options.deadline / 10, absl::Milliseconds(1),
                         absl::Milliseconds(50))) {
    if (options_.transport != Transport::kUnary) {
      internal::StreamTransportOptions t;
      t.mode = options_.transport == Transport::kStream
                   ? internal::StreamMode::kStream
                   : internal::StreamMode::kBatchStream;
      t.max_in_flight = options_.stream_messages_in_flight;
      t.max_requests_per_message = options_.max_requests_per_message;
      t.max_backoff = options_.max_reconnect_backoff;
      transport_ =
          std::make_unique<internal::StreamTransport>(channel_, &cq_, t);
    }
    completions_ = std::thread([this] { CompletionLoop(); });
    scheduler_ = std::thread([this] { SchedulerLoop(); });
  }

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      cv_.Signal();
    }
    scheduler_.join();  // it sends every pending batch and runs every timer
    for (;;) {
      {
        absl::MutexLock lock(&flight_mu_);
        if (flight_mu_.AwaitWithTimeout(
                absl::Condition(
                    +[](int64_t* n) { return *n == 0; }, &in_flight_),
                tick_)) {
          break;
        }
      }
      // The scheduler is gone: enforce the stream deadlines here.
      if (transport_ != nullptr) transport_->CheckDeadlines(absl::Now());
    }
    if (transport_ != nullptr) transport_->Shutdown();
    cq_.Shutdown();
    completions_.join();
  }

  const ClientOptions& options() const { return options_; }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  ClientStats stats() const {
    ClientStats stats;
    {
      absl::MutexLock lock(&mu_);
      stats = stats_;
    }
    if (transport_ != nullptr) {
      const internal::StreamTransportStats t = transport_->stats();
      stats.streams = t.streams;
      stats.stream_messages = t.messages;
      stats.stream_cancels = t.cancelled;
    }
    return stats;
  }

  void Validate(v1::ValidateRequest request, ValidateCallback done) {
    if (request.context().edge_id().empty() && !options_.edge_id.empty()) {
      request.mutable_context()->set_edge_id(options_.edge_id);
    }
    ClearInvalidContextText(request.mutable_context());
    auto call = std::make_shared<Call>();
    call->request = std::move(request);
    call->deadline = absl::Now() + options_.deadline;
    call->done = std::move(done);
    Enter();
    StartAttempt(std::move(call));
  }

  void CheckRecipient(const v1::SmtpContext& context, std::string recipient,
                      const CheckOptions& check, RecipientCallback done) {
    if (!check.batch || options_.batch_window == absl::ZeroDuration()) {
      {
        absl::MutexLock lock(&mu_);
        ++stats_.checks;
      }
      auto batch = std::make_unique<Batch>();
      batch->context = context;
      batch->dry_run = check.dry_run;
      batch->recipients.push_back(std::move(recipient));
      batch->callbacks.push_back(std::move(done));
      Send(std::move(batch));
      return;
    }
    std::unique_ptr<Batch> full;
    std::vector<std::unique_ptr<Batch>> due;
    {
      absl::MutexLock lock(&mu_);
      ++stats_.checks;
      const absl::Time now = absl::Now();
      TakeDueLocked(now, &due);
      if (stopping_) {
        // A callback asking again while the Client is being destroyed: the
        // scheduler may be gone, so no batch window.
        full = std::make_unique<Batch>();
        full->context = context;
        full->dry_run = check.dry_run;
        full->recipients.push_back(std::move(recipient));
        full->callbacks.push_back(std::move(done));
      } else {
        std::string key = BatchKey(context, check.dry_run);
        auto it = pending_.find(key);
        if (it == pending_.end()) {
          int& busy = busy_[key];
          if (busy == 0) {
            // Nothing in flight for this context: send at once. Waiting
            // pays only when a call is already out (below).
            ++busy;
            full = std::make_unique<Batch>();
            full->key = std::move(key);
            full->context = context;
            full->dry_run = check.dry_run;
            full->recipients.push_back(std::move(recipient));
            full->callbacks.push_back(std::move(done));
          } else {
            // A call for this context is out: gather until it returns,
            // the window ends or the batch is full.
            auto batch = std::make_unique<Batch>();
            batch->key = key;
            batch->context = context;
            batch->dry_run = check.dry_run;
            batch->flush_at = now + options_.batch_window;
            // Its window is enforced as checks arrive (above) and by the
            // scheduler at least every tick: waking the scheduler for
            // each window cost a thread wake-up per socketmap lookup
            // under load, mostly for batches their call's return had
            // already sent.
            WakeSchedulerByLocked(now + tick_);
            it = pending_.emplace(std::move(key), std::move(batch)).first;
          }
        }
        if (it != pending_.end()) {
          Batch& batch = *it->second;
          batch.recipients.push_back(std::move(recipient));
          batch.callbacks.push_back(std::move(done));
          if (static_cast<int>(batch.recipients.size()) >= options_.max_batch) {
            full = std::move(it->second);
            pending_.erase(it);
            ++busy_[full->key];
          }
        }
      }
    }
    for (auto& batch : due) Send(std::move(batch));
    if (full != nullptr) Send(std::move(full));
  }

  RecipientResult PolicyResult(absl::Status error) const {
    RecipientResult r;
    r.source = options_.failure_policy == FailurePolicy::kFailOpen
                   ? RecipientResult::Source::kFailOpen
                   : RecipientResult::Source::kTempfail;
    r.error = std::move(error);
    return r;
  }

 private:
  struct Call {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::ValidateResponse>> rpc;
    grpc::Status status;
    v1::ValidateRequest request;
    v1::ValidateResponse response;
    absl::Time deadline;
    int attempt = 0;
    // Sent as a unary call (the option, or a server without streams).
    bool unary = false;
    ValidateCallback done;
  };

  // A unary call's completion.
  struct UnaryTag final : internal::CqTag {
    Impl* impl;
    std::shared_ptr<Call> call;
    UnaryTag(Impl* i, std::shared_ptr<Call> c) : impl(i), call(std::move(c)) {}
    void Proceed(bool /*ok*/) override {
      std::unique_ptr<UnaryTag> self(this);
      absl::StatusOr<v1::ValidateResponse> result =
          call->status.ok()
              ? absl::StatusOr<v1::ValidateResponse>(std::move(call->response))
              : absl::StatusOr<v1::ValidateResponse>(FromGrpc(call->status));
      impl->OnResult(std::move(call), std::move(result));
    }
  };

  // Recipients of identical context waiting for their Validate.
  struct Batch {
    // BatchKey() when the batch counts in busy_; empty otherwise.
    std::string key;
    v1::SmtpContext context;
    bool dry_run = false;
    std::vector<std::string> recipients;
    std::vector<RecipientCallback> callbacks;
    absl::Time flush_at;
  };

  struct Timer {
    absl::Time at;
    uint64_t seq;
    std::function<void()> run;
    bool operator>(const Timer& o) const {
      return at != o.at ? at > o.at : seq > o.seq;
    }
  };

  void Enter() {
    absl::MutexLock lock(&flight_mu_);
    ++in_flight_;
  }
  void Leave() {
    absl::MutexLock lock(&flight_mu_);
    --in_flight_;
  }

  void StartAttempt(std::shared_ptr<Call> call) {
    ++call->attempt;
    {
      absl::MutexLock lock(&mu_);
      ++stats_.calls;
      if (call->attempt > 1) ++stats_.retries;
    }
    if (transport_ == nullptr || call->unary) {
      StartUnary(std::move(call));
      return;
    }
    const v1::ValidateRequest* request = &call->request;
    const absl::Time deadline = call->deadline;
    transport_->Send(request, deadline,
                     [this, call = std::move(call)](
                         absl::StatusOr<v1::ValidateResponse> r) mutable {
                       OnResult(std::move(call), std::move(r));
                     });
  }

  void StartUnary(std::shared_ptr<Call> call) {
    call->unary = true;
    call->context = std::make_unique<grpc::ClientContext>();
    call->context->set_deadline(absl::ToChronoTime(call->deadline));
    call->response.Clear();
    // The tag owns a reference until the completion queue hands it back.
    auto* tag = new UnaryTag(this, call);
    call->rpc = stub_->AsyncValidate(call->context.get(), call->request, &cq_);
    call->rpc->Finish(&call->response, &call->status, tag);
  }

  // Completions arrive here. A thread blocked in Next() keeps polling the
  // channel, so an answer is read the moment it arrives (the callback API
  // of gRPC 1.51 left answers unread for up to 100 ms when no gRPC thread
  // happened to be polling).
  void CompletionLoop() {
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
      static_cast<internal::CqTag*>(tag)->Proceed(ok);
    }
  }

  void OnResult(std::shared_ptr<Call> call,
                absl::StatusOr<v1::ValidateResponse> result) {
    if (result.ok()) {
      if (result->verdicts_size() != call->request.recipients_size()) {
        Finish(*call, absl::InternalError(absl::StrCat(
                          "server answered ", result->verdicts_size(),
                          " verdicts for ", call->request.recipients_size(),
                          " recipients")));
        return;
      }
      Finish(*call, std::move(result));
      return;
    }
    // A server without the stream methods judged nothing: the request
    // goes as a unary call (this is no retry).
    if (!call->unary &&
        result.status().code() == absl::StatusCode::kUnimplemented &&
        transport_ != nullptr && transport_->unary_only()) {
      StartUnary(std::move(call));
      return;
    }
    const absl::Status& status = result.status();
    {
      absl::MutexLock lock(&mu_);
      ++stats_.failed_calls;
    }
    const absl::Time retry_at = absl::Now() + options_.retry_backoff;
    if (call->request.dry_run() &&
        status.code() == absl::StatusCode::kUnavailable &&
        call->attempt < options_.dry_run_attempts &&
        retry_at < call->deadline) {
      std::shared_ptr<Call> retry = call;
      if (AddTimer(retry_at, [this, retry]() mutable {
            StartAttempt(std::move(retry));
          })) {
        return;
      }
    }
    Finish(*call, status);
  }

  void Finish(Call& call, absl::StatusOr<v1::ValidateResponse> result) {
    ValidateCallback done = std::move(call.done);
    done(std::move(result));
    Leave();
  }

  // Sends one batch as one Validate and fans the answer out.
  void Send(std::unique_ptr<Batch> batch) {
    const size_t n = batch->recipients.size();
    if (n > 1) {
      absl::MutexLock lock(&mu_);
      stats_.merged_checks += n;
    }
    v1::ValidateRequest request;
    *request.mutable_context() = batch->context;
    request.set_dry_run(batch->dry_run);
    for (std::string& r : batch->recipients) request.add_recipients(r);
    std::shared_ptr<Batch> shared(std::move(batch));
    Validate(std::move(request), [this, shared](
                                     absl::StatusOr<v1::ValidateResponse> r) {
      if (!shared->key.empty()) Released(shared->key);
      const int n = static_cast<int>(shared->recipients.size());
      if (r.ok()) {
        for (int i = 0; i < n; ++i) {
          RecipientResult result;
          result.source = RecipientResult::Source::kService;
          result.verdict = std::move(*r->mutable_verdicts(i));
          result.client = r->client();
          result.directory_version = r->directory_version();
          result.batch_size = n;
          shared->callbacks[i](std::move(result));
        }
        return;
      }
      // The server refuses a request over its limits or one that does
      // not parse before counting anything, so one bad recipient (too
      // long) must not take the others of its batch down: ask for each
      // alone. A single refused recipient is the request's fault, not an
      // outage: it is answered kInvalid, never by the failure policy.
      if (r.status().code() == absl::StatusCode::kInvalidArgument) {
        if (n == 1) {
          RecipientResult result;
          result.source = RecipientResult::Source::kInvalid;
          result.error = r.status();
          result.batch_size = 1;
          shared->callbacks[0](std::move(result));
          return;
        }
        for (int i = 0; i < n; ++i) {
          auto single = std::make_unique<Batch>();
          single->context = shared->context;
          single->dry_run = shared->dry_run;
          single->recipients.push_back(std::move(shared->recipients[i]));
          single->callbacks.push_back(std::move(shared->callbacks[i]));
          Send(std::move(single));
        }
        return;
      }
      {
        absl::MutexLock lock(&mu_);
        stats_.policy_answers += n;
      }
      for (int i = 0; i < n; ++i) {
        RecipientResult result = PolicyResult(r.status());
        result.batch_size = n;
        shared->callbacks[i](std::move(result));
      }
    });
  }

  // Moves the batches whose window is over to `due` (counted busy).
  void TakeDueLocked(absl::Time now, std::vector<std::unique_ptr<Batch>>* due)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (stopping_ || it->second->flush_at <= now) {
        ++busy_[it->second->key];
        due->push_back(std::move(it->second));
        pending_.erase(it++);
      } else {
        ++it;
      }
    }
  }

  // A call for `key` returned: the batch gathered meanwhile goes out now
  // rather than at the end of its window.
  void Released(const std::string& key) {
    std::unique_ptr<Batch> next;
    {
      absl::MutexLock lock(&mu_);
      auto busy = busy_.find(key);
      if (busy != busy_.end() && --busy->second == 0) busy_.erase(busy);
      auto it = pending_.find(key);
      if (it != pending_.end()) {
        next = std::move(it->second);
        pending_.erase(it);
        ++busy_[key];
      }
    }
    if (next != nullptr) Send(std::move(next));
  }

  // False once the destructor began: the scheduler may be gone, so the
  // caller finishes now instead of retrying.
  bool AddTimer(absl::Time at, std::function<void()> run) {
    absl::MutexLock lock(&mu_);
    if (stopping_) return false;
    timers_.push_back(Timer{at, next_timer_seq_++, std::move(run)});
    std::push_heap(timers_.begin(), timers_.end(), std::greater<Timer>());
    WakeSchedulerByLocked(at);
    return true;
  }

  // The scheduler must look again by `at`: it is woken only when it
  // sleeps past that.
  void WakeSchedulerByLocked(absl::Time at) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (at < scheduler_wake_) {
      scheduler_wake_ = at;
      cv_.Signal();
    }
  }

  // Sends batches whose window is over and runs due timers. On stop, sends
  // and runs everything that is left, then returns.
  void SchedulerLoop() {
    for (;;) {
      std::vector<std::unique_ptr<Batch>> due;
      std::vector<std::function<void()>> timers;
      bool stop;
      {
        absl::MutexLock lock(&mu_);
        absl::Time next = absl::InfiniteFuture();
        if (!timers_.empty()) next = std::min(next, timers_.front().at);
        const absl::Time now = absl::Now();
        // The stream transports' deadlines and the batch windows are
        // checked every tick.
        if (transport_ != nullptr || !pending_.empty()) {
          next = std::min(next, now + tick_);
        }
        if (!stopping_ && next > now) {
          scheduler_wake_ = next;
          cv_.WaitWithDeadline(&mu_, next);
          // Awake: it looks at pending_ and timers_ before it sleeps again.
          scheduler_wake_ = absl::InfinitePast();
        }
        stop = stopping_;
        const absl::Time after = absl::Now();
        TakeDueLocked(after, &due);
        while (!timers_.empty() && (stop || timers_.front().at <= after)) {
          std::pop_heap(timers_.begin(), timers_.end(), std::greater<Timer>());
          timers.push_back(std::move(timers_.back().run));
          timers_.pop_back();
        }
      }
      for (auto& batch : due) Send(std::move(batch));
      for (auto& run : timers) run();
      if (transport_ != nullptr) transport_->CheckDeadlines(absl::Now());
      if (stop) {
        absl::MutexLock lock(&mu_);
        // A retry that failed again at shutdown may have added a timer.
        if (pending_.empty() && timers_.empty()) return;
      }
    }
  }

  // Constant after construction.
  const ClientOptions options_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<v1::RecipientValidation::Stub> stub_;
  const absl::Duration tick_;  // how often stream deadlines are checked

  mutable absl::Mutex mu_;
  absl::CondVar cv_;  // pending_ or timers_ changed, or stopping_
  absl::flat_hash_map<std::string, std::unique_ptr<Batch>> pending_
      ABSL_GUARDED_BY(mu_);
  // Merged calls in flight per batch key (absent: none).
  absl::flat_hash_map<std::string, int> busy_ ABSL_GUARDED_BY(mu_);
  std::vector<Timer> timers_ ABSL_GUARDED_BY(mu_);  // min-heap on `at`
  uint64_t next_timer_seq_ ABSL_GUARDED_BY(mu_) = 0;
  // When the sleeping scheduler wakes by itself; InfinitePast() while it
  // is awake (it will look at everything before sleeping again).
  absl::Time scheduler_wake_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  ClientStats stats_ ABSL_GUARDED_BY(mu_);

  grpc::CompletionQueue cq_;
  // Null with Transport::kUnary. Declared after cq_: destroyed before it.
  std::unique_ptr<internal::StreamTransport> transport_;
  std::thread completions_;

  // Calls in flight (the destructor waits for zero).
  absl::Mutex flight_mu_;
  int64_t in_flight_ ABSL_GUARDED_BY(flight_mu_) = 0;

  std::thread scheduler_;
};

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const ClientOptions& options) {
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;
  grpc::ChannelArguments args;
  const int max_backoff_ms = static_cast<int>(
      absl::ToInt64Milliseconds(options.max_reconnect_backoff));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::min(max_backoff_ms, 100));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              std::min(max_backoff_ms, 100));
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls.enabled) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls.ca_file.empty()) {
      absl::StatusOr<std::string> ca =
          ReadPemFile("ca_file", options.tls.ca_file);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *std::move(ca);
    }
    if (!options.tls.cert_file.empty()) {
      absl::StatusOr<std::string> cert =
          ReadPemFile("cert_file", options.tls.cert_file);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key =
          ReadPemFile("key_file", options.tls.key_file);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    if (!options.tls.server_name_override.empty()) {
      args.SetSslTargetNameOverride(options.tls.server_name_override);
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(options.target, credentials, args);
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(
    const ClientOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
  if (!channel.ok()) return channel.status();
  return std::unique_ptr<Client>(
      new Client(std::make_unique<Impl>(options, *std::move(channel))));
}

absl::StatusOr<std::unique_ptr<Client>> Client::CreateWithChannel(
    const ClientOptions& options, std::shared_ptr<grpc::Channel> channel) {
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;
  if (channel == nullptr) return absl::InvalidArgumentError("channel: null");
  return std::unique_ptr<Client>(
      new Client(std::make_unique<Impl>(options, std::move(channel))));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

void Client::Validate(v1::ValidateRequest request, ValidateCallback done) {
  impl_->Validate(std::move(request), std::move(done));
}

absl::StatusOr<v1::ValidateResponse> Client::ValidateSync(
    v1::ValidateRequest request) {
  absl::Notification finished;
  absl::StatusOr<v1::ValidateResponse> out;
  impl_->Validate(std::move(request),
                  [&](absl::StatusOr<v1::ValidateResponse> r) {
                    out = std::move(r);
                    finished.Notify();
                  });
  finished.WaitForNotification();
  return out;
}

void Client::CheckRecipient(const v1::SmtpContext& context,
                            std::string recipient, const CheckOptions& check,
                            RecipientCallback done) {
  impl_->CheckRecipient(context, std::move(recipient), check, std::move(done));
}

RecipientResult Client::CheckRecipientSync(const v1::SmtpContext& context,
                                           std::string recipient,
                                           const CheckOptions& check) {
  absl::Notification finished;
  RecipientResult out;
  impl_->CheckRecipient(context, std::move(recipient), check,
                        [&](RecipientResult r) {
                          out = std::move(r);
                          finished.Notify();
                        });
  finished.WaitForNotification();
  return out;
}

RecipientResult Client::PolicyResult(absl::Status error) const {
  return impl_->PolicyResult(std::move(error));
}

const ClientOptions& Client::options() const { return impl_->options(); }
std::shared_ptr<grpc::Channel> Client::channel() const {
  return impl_->channel();
}
ClientStats Client::stats() const { return impl_->stats(); }

}  // namespace rcptguard::client
