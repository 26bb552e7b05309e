// The gRPC modes of rcptguard-bench: unary Validate and ValidateStream,
// driven through completion queues, and grpc-floor: empty unary calls
// (grpc.health.v1 Check, answered by gRPC itself) on the same channels, the
// cost of a unary call with no work in it.
//
// `client_threads` threads each own one CompletionQueue and a share of the
// `concurrency` slots. A unary slot is one call in flight: when it
// completes, the answer is checked and recorded and the slot issues the next
// call at once (closed loop). A stream slot is one ValidateStream with up to
// `stream_depth` requests written and not yet answered (1: ping-pong, write
// one request, read its answer, write the next; more: pipelined, answers
// checked in order). Slots use the
// `connections` channels round-robin; every channel has its own subchannel
// pool, so each is a separate TCP connection.
//
// The run ends at `duration` or after `max_requests` requests, whichever
// comes first: a slot that finds the budget spent stops (a stream half-
// closes and finishes). Only requests issued before the end are counted.
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "clients/bench/bench.h"
#include "grpc/grpc.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/async_stream.h"
#include "grpcpp/support/async_unary_call.h"
#include "grpcpp/support/channel_arguments.h"
#include "rcptguard/v1/validation.grpc.pb.h"

namespace rcptguard::bench {
namespace {

using Clock = std::chrono::steady_clock;

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "OTHER";
  }
}

// Shared by all threads: the request budget. Lock-free; every field is an
// atomic or constant after construction.
class Budget {
 public:
  Budget(Clock::time_point end, uint64_t max_requests)
      : end_(end), max_requests_(max_requests) {}
  // Takes one request's ticket; false once the run is over. Returns the
  // request's sequence number in *seq.
  bool Take(uint64_t* seq) {
    if (Clock::now() >= end_) return false;
    *seq = issued_.fetch_add(1, std::memory_order_relaxed);
    return max_requests_ == 0 || *seq < max_requests_;
  }

 private:
  const Clock::time_point end_;
  const uint64_t max_requests_;
  std::atomic<uint64_t> issued_{0};
};

struct Shared {
  const BenchOptions* options;
  const Workload* workload;
  std::vector<std::unique_ptr<v1::RecipientValidation::Stub>> stubs;
  // grpc-floor mode: the same channels' health stubs.
  std::vector<std::unique_ptr<grpc::health::v1::Health::Stub>> health_stubs;
  std::vector<std::string> client_ips;
  Budget* budget;
};

struct Slot;

// A completion queue tag: which slot, and which side of it. A stream has at
// most one operation outstanding on each side: reads on the read side;
// StartCall, writes, WritesDone and Finish on the other.
struct Tag {
  Slot* slot;
  bool read;
};

// A request written on a stream and not yet answered.
struct InFlight {
  uint64_t request_id = 0;
  std::vector<bool> expect_valid;
  Clock::time_point started;
};

// One in-flight call or stream. Owned by one thread.
struct Slot {
  enum class State {
    kIdle,
    kUnary,
    kStreamStart,
    kWrite,      // a write is outstanding
    kWriteIdle,  // no write outstanding: the pipeline is full
    kWritesDone,
    kClosed,  // WritesDone completed
    kFinish,
    kDone
  };
  Tag op_tag{this, false};
  Tag read_tag{this, true};
  State state = State::kIdle;
  // Stream: a read is outstanding; the requests it answers, oldest first.
  bool reading = false;
  bool broken = false;  // an operation failed: finish once the other ends
  std::deque<InFlight> in_flight;
  v1::RecipientValidation::Stub* stub = nullptr;
  std::unique_ptr<grpc::ClientContext> context;
  v1::ValidateRequest request;
  v1::ValidateResponse response;
  grpc::Status status;
  std::vector<bool> expect_valid;
  Clock::time_point started;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::ValidateResponse>> unary;
  // grpc-floor mode: an empty health check instead of a Validate call.
  grpc::health::v1::Health::Stub* health_stub = nullptr;
  grpc::health::v1::HealthCheckRequest health_request;
  grpc::health::v1::HealthCheckResponse health_response;
  std::unique_ptr<
      grpc::ClientAsyncResponseReader<grpc::health::v1::HealthCheckResponse>>
      health;
  std::unique_ptr<
      grpc::ClientAsyncReaderWriter<v1::ValidateRequest, v1::ValidateResponse>>
      stream;
};

const char* StatusName(v1::RecipientStatus s) {
  switch (s) {
    case v1::RECIPIENT_STATUS_VALID:
      return "VALID";
    case v1::RECIPIENT_STATUS_UNKNOWN:
      return "UNKNOWN";
    case v1::RECIPIENT_STATUS_NOT_SERVED:
      return "NOT_SERVED";
    case v1::RECIPIENT_STATUS_MALFORMED:
      return "MALFORMED";
    default:
      return "UNSPECIFIED";
  }
}

class Worker {
 public:
  Worker(const Shared& shared, int index) : shared_(shared) {
    const BenchOptions& o = *shared.options;
    generator_ =
        std::make_unique<QueryGenerator>(*shared.workload, o.unknown_share,
                                         o.seed, static_cast<uint64_t>(index));
  }

  void AddSlot(v1::RecipientValidation::Stub* stub,
               grpc::health::v1::Health::Stub* health_stub) {
    auto slot = std::make_unique<Slot>();
    slot->stub = stub;
    slot->health_stub = health_stub;
    slots_.push_back(std::move(slot));
  }

  void Run() {
    const bool stream = shared_.options->mode == Mode::kStream;
    int active = 0;
    for (auto& slot : slots_) {
      if (stream) {
        StartStream(slot.get());
        ++active;
      } else if (StartUnary(slot.get())) {
        ++active;
      }
    }
    void* tag = nullptr;
    bool ok = false;
    while (active > 0 && cq_.Next(&tag, &ok)) {
      const Tag* t = static_cast<const Tag*>(tag);
      const bool more =
          stream ? OnStreamEvent(t->slot, t->read, ok) : OnUnaryDone(t->slot);
      if (!more) --active;
    }
    cq_.Shutdown();
    while (cq_.Next(&tag, &ok)) {
    }
  }

  Report& report() { return report_; }

 private:
  // Fills slot->request with the next request; false when the budget is
  // spent.
  bool NextRequest(Slot* slot) {
    uint64_t seq = 0;
    if (!shared_.budget->Take(&seq)) return false;
    const BenchOptions& o = *shared_.options;
    if (o.mode == Mode::kGrpcFloor) {  // an empty call: nothing to build
      slot->started = Clock::now();
      return true;
    }
    v1::ValidateRequest& r = slot->request;
    r.set_request_id(seq);
    r.set_dry_run(!o.feed_harvest);
    v1::SmtpContext* c = r.mutable_context();
    c->set_client_ip(shared_.client_ips[seq % shared_.client_ips.size()]);
    c->set_edge_id("rcptguard-bench");
    auto* recipients = r.mutable_recipients();
    // Reuses the strings of the previous request (no allocation once warm).
    while (recipients->size() > o.batch) recipients->RemoveLast();
    slot->expect_valid.resize(o.batch);
    for (int i = 0; i < o.batch; ++i) {
      std::string* out =
          i < recipients->size() ? recipients->Mutable(i) : recipients->Add();
      slot->expect_valid[i] = generator_->Next(out);
    }
    slot->started = Clock::now();
    return true;
  }

  bool StartUnary(Slot* slot) {
    if (!NextRequest(slot)) {
      slot->state = Slot::State::kDone;
      return false;
    }
    slot->context = std::make_unique<grpc::ClientContext>();
    slot->context->set_deadline(
        std::chrono::system_clock::now() +
        absl::ToChronoNanoseconds(shared_.options->deadline));
    slot->state = Slot::State::kUnary;
    if (shared_.options->mode == Mode::kGrpcFloor) {
      slot->health_response.Clear();
      slot->health = slot->health_stub->PrepareAsyncCheck(
          slot->context.get(), slot->health_request, &cq_);
      slot->health->StartCall();
      slot->health->Finish(&slot->health_response, &slot->status,
                           &slot->op_tag);
      return true;
    }
    slot->response.Clear();
    slot->unary = slot->stub->PrepareAsyncValidate(slot->context.get(),
                                                   slot->request, &cq_);
    slot->unary->StartCall();
    slot->unary->Finish(&slot->response, &slot->status, &slot->op_tag);
    return true;
  }

  bool OnUnaryDone(Slot* slot) {
    const uint64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            Clock::now() - slot->started)
                            .count();
    if (!slot->status.ok()) {
      report_.AddError(
          absl::StrCat("rpc_", StatusCodeName(slot->status.error_code())));
    } else if (shared_.options->mode == Mode::kGrpcFloor) {
      // One call counts as one "recipient", so that server CPU per million
      // reads as per million calls.
      report_.requests++;
      report_.recipients++;
      report_.latency.Record(ns);
      if (slot->health_response.status() !=
          grpc::health::v1::HealthCheckResponse::SERVING) {
        report_.AddError("not_serving");
      }
    } else {
      Check(slot->response, slot->request.request_id(), slot->expect_valid, ns);
    }
    return StartUnary(slot);
  }

  void Check(const v1::ValidateResponse& r, uint64_t request_id,
             const std::vector<bool>& expect_valid, uint64_t ns) {
    report_.requests++;
    report_.latency.Record(ns);
    if (r.request_id() != request_id) report_.AddError("request_id_mismatch");
    if (r.verdicts_size() != static_cast<int>(expect_valid.size())) {
      report_.AddError("wrong_verdict_count");
      return;
    }
    report_.recipients += r.verdicts_size();
    for (int i = 0; i < r.verdicts_size(); ++i) {
      const v1::RecipientStatus want = expect_valid[i]
                                           ? v1::RECIPIENT_STATUS_VALID
                                           : v1::RECIPIENT_STATUS_UNKNOWN;
      const v1::RecipientStatus got = r.verdicts(i).status();
      if (got != want) {
        report_.AddError(absl::StrCat("expected_", StatusName(want), "_got_",
                                      StatusName(got)));
      }
    }
    report_.client_actions[v1::ClientAction_Name(r.client().action())]++;
  }

  void StartStream(Slot* slot) {
    slot->context = std::make_unique<grpc::ClientContext>();
    // A stream lives for the whole run; the deadline only guards a hang.
    slot->context->set_deadline(
        std::chrono::system_clock::now() +
        absl::ToChronoNanoseconds(shared_.options->duration +
                                  shared_.options->deadline));
    slot->stream =
        slot->stub->PrepareAsyncValidateStream(slot->context.get(), &cq_);
    slot->state = Slot::State::kStreamStart;
    slot->stream->StartCall(&slot->op_tag);
  }

  // With no write outstanding: writes the next request if the pipeline has
  // room (and keeps a read outstanding for it), closes the sending side
  // when the budget is spent, or waits for an answer.
  void WriteNextOrClose(Slot* slot) {
    const auto depth = static_cast<size_t>(shared_.options->stream_depth);
    if (slot->in_flight.size() >= depth) {
      slot->state = Slot::State::kWriteIdle;
      return;
    }
    if (!NextRequest(slot)) {
      slot->state = Slot::State::kWritesDone;
      slot->stream->WritesDone(&slot->op_tag);
      return;
    }
    InFlight& sent = slot->in_flight.emplace_back();
    sent.request_id = slot->request.request_id();
    sent.expect_valid = slot->expect_valid;
    sent.started = slot->started;
    slot->state = Slot::State::kWrite;
    slot->stream->Write(slot->request, &slot->op_tag);
    if (!slot->reading) {
      slot->reading = true;
      slot->response.Clear();
      slot->stream->Read(&slot->response, &slot->read_tag);
    }
  }

  void FinishStream(Slot* slot) {
    slot->state = Slot::State::kFinish;
    slot->stream->Finish(&slot->status, &slot->op_tag);
  }

  // True when the sending side has nothing outstanding.
  static bool SendSideIdle(const Slot* slot) {
    return slot->state == Slot::State::kWriteIdle ||
           slot->state == Slot::State::kClosed;
  }

  // Returns false once the slot's stream has finished.
  bool OnStreamEvent(Slot* slot, bool read, bool ok) {
    if (read) {
      slot->reading = false;
      if (!ok) {
        report_.AddError("stream_read_failed");
        slot->broken = true;
      } else {
        const InFlight& sent = slot->in_flight.front();
        const uint64_t ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() -
                                                                 sent.started)
                .count();
        Check(slot->response, sent.request_id, sent.expect_valid, ns);
        slot->in_flight.pop_front();
        if (!slot->in_flight.empty()) {
          slot->reading = true;
          slot->response.Clear();
          slot->stream->Read(&slot->response, &slot->read_tag);
        }
      }
      if (slot->broken) {
        if (SendSideIdle(slot)) FinishStream(slot);
      } else if (slot->state == Slot::State::kWriteIdle) {
        WriteNextOrClose(slot);
      } else if (slot->state == Slot::State::kClosed &&
                 slot->in_flight.empty()) {
        FinishStream(slot);
      }
      return true;
    }
    switch (slot->state) {
      case Slot::State::kStreamStart:
        if (!ok) {
          FinishStream(slot);
        } else {
          WriteNextOrClose(slot);
        }
        return true;
      case Slot::State::kWrite:
        if (!ok) slot->broken = true;
        if (slot->broken) {
          slot->state = Slot::State::kWriteIdle;
          if (!slot->reading) FinishStream(slot);
        } else {
          WriteNextOrClose(slot);
        }
        return true;
      case Slot::State::kWritesDone:
        slot->state = Slot::State::kClosed;
        if (!slot->reading) FinishStream(slot);
        return true;
      case Slot::State::kFinish:
        if (!slot->status.ok()) {
          report_.AddError(
              absl::StrCat("rpc_", StatusCodeName(slot->status.error_code())));
        }
        slot->state = Slot::State::kDone;
        return false;
      default:
        return false;
    }
  }

  const Shared& shared_;
  grpc::CompletionQueue cq_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::unique_ptr<QueryGenerator> generator_;
  Report report_;
};

}  // namespace

absl::StatusOr<Report> RunGrpc(const BenchOptions& options,
                               const Workload& workload) {
  Shared shared;
  shared.options = &options;
  shared.workload = &workload;
  for (int i = 0; i < options.client_ips; ++i) {
    // 10.0.0.0/8, so distinct keys at every harvest prefix length.
    shared.client_ips.push_back(absl::StrCat("10.", (i >> 16) & 255, ".",
                                             (i >> 8) & 255, ".", i & 255));
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < options.connections; ++i) {
    grpc::ChannelArguments args;
    // Each channel its own subchannel, hence its own TCP connection.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("rcptguard.bench.channel", i);
    args.SetMaxReceiveMessageSize(64 << 20);
    channels.push_back(grpc::CreateCustomChannel(
        options.target, grpc::InsecureChannelCredentials(), args));
    shared.stubs.push_back(v1::RecipientValidation::NewStub(channels.back()));
    shared.health_stubs.push_back(
        grpc::health::v1::Health::NewStub(channels.back()));
  }
  // Connect first, so connection set-up is not in the measurement.
  for (size_t i = 0; i < channels.size(); ++i) {
    if (!channels[i]->WaitForConnected(std::chrono::system_clock::now() +
                                       std::chrono::seconds(10))) {
      return absl::UnavailableError(absl::StrCat(
          "cannot connect to ", options.target, " (channel ", i, ")"));
    }
  }

  const int threads =
      std::max(1, std::min(options.client_threads, options.concurrency));
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < threads; ++t)
    workers.push_back(std::make_unique<Worker>(shared, t));
  for (int s = 0; s < options.concurrency; ++s) {
    const size_t c = s % shared.stubs.size();
    workers[s % threads]->AddSlot(shared.stubs[c].get(),
                                  shared.health_stubs[c].get());
  }

  double server_cpu0 = -1;
  if (options.server_pid > 0) {
    absl::StatusOr<double> cpu = ProcessCpuSeconds(options.server_pid);
    if (!cpu.ok()) return cpu.status();
    server_cpu0 = *cpu;
  }
  const double client_cpu0 = SelfCpuSeconds();
  const Clock::time_point start = Clock::now();
  Budget budget(start + absl::ToChronoNanoseconds(options.duration),
                options.max_requests);
  shared.budget = &budget;
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w] { w->Run(); });
  for (std::thread& t : running) t.join();
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();

  Report report;
  report.seconds = seconds;
  report.client_cpu_seconds = SelfCpuSeconds() - client_cpu0;
  if (options.server_pid > 0) {
    absl::StatusOr<double> cpu = ProcessCpuSeconds(options.server_pid);
    if (!cpu.ok()) return cpu.status();
    report.server_cpu_seconds = *cpu - server_cpu0;
  }
  for (auto& w : workers) report.MergeCounts(w->report());
  report.mode = ModeName(options.mode);
  report.target = options.target;
  report.batch = options.batch;
  report.concurrency = options.concurrency;
  if (options.mode == Mode::kStream) report.stream_depth = options.stream_depth;
  report.connections = options.connections;
  report.client_threads = threads;
  return report;
}

}  // namespace rcptguard::bench
