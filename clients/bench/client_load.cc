// The client-library modes of rcptguard-bench: `client-unary`,
// `client-stream` and `client-batch` drive a running rcptguardd through
// rcptguard::client::Client (clients/cpp/client.h) with Transport kUnary,
// kStream and kBatchStream: what an edge adapter pays, client library
// included. `concurrency` callers each keep one Validate of `batch`
// recipients outstanding (closed loop), each with its own client IP as
// separate SMTP sessions would, so kBatchStream groups the requests of
// different callers into shared stream messages while one is in flight.
// The report's client CPU is this whole process (the library's threads and
// the callers' bookkeeping).
//
// Thread safety: each caller's state is touched only by the callback of its
// own outstanding call (one at a time); the report is merged under a mutex.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "clients/bench/bench.h"
#include "clients/cpp/client.h"

namespace rcptguard::bench {
namespace {

using Clock = std::chrono::steady_clock;

client::Transport TransportOf(Mode mode) {
  switch (mode) {
    case Mode::kClientUnary:
      return client::Transport::kUnary;
    case Mode::kClientStream:
      return client::Transport::kStream;
    default:
      return client::Transport::kBatchStream;
  }
}

struct Run {
  const BenchOptions* options;
  client::Client* client;
  Clock::time_point end;
  std::atomic<uint64_t> sent{0};
  std::atomic<int> active{0};
  absl::Notification all_done;
  absl::Mutex mu;
  Report report ABSL_GUARDED_BY(mu);
};

class Caller {
 public:
  Caller(Run* run, const Workload& workload, int index)
      : run_(run),
        generator_(workload, run->options->unknown_share, run->options->seed,
                   static_cast<uint64_t>(index)) {
    v1::SmtpContext* c = request_.mutable_context();
    c->set_client_ip(absl::StrCat("10.", (index >> 16) & 255, ".",
                                  (index >> 8) & 255, ".", index & 255));
    c->set_edge_id("rcptguard-bench");
    c->set_helo("bench.example.net");
    request_.set_dry_run(!run->options->feed_harvest);
  }

  // Starts the next call, or reports this caller done.
  void Next() {
    const BenchOptions& o = *run_->options;
    const uint64_t seq = run_->sent.fetch_add(1);
    if (Clock::now() >= run_->end ||
        (o.max_requests > 0 && seq >= o.max_requests)) {
      Flush();
      if (run_->active.fetch_sub(1) == 1) run_->all_done.Notify();
      return;
    }
    request_.set_request_id(seq);
    auto* recipients = request_.mutable_recipients();
    while (recipients->size() > o.batch) recipients->RemoveLast();
    expect_valid_.resize(o.batch);
    for (int i = 0; i < o.batch; ++i) {
      std::string* out =
          i < recipients->size() ? recipients->Mutable(i) : recipients->Add();
      expect_valid_[i] = generator_.Next(out);
    }
    started_ = Clock::now();
    run_->client->Validate(
        request_,
        [this](absl::StatusOr<v1::ValidateResponse> r) { Done(std::move(r)); });
  }

 private:
  void Done(absl::StatusOr<v1::ValidateResponse> r) {
    const uint64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            Clock::now() - started_)
                            .count();
    if (!r.ok()) {
      local_.AddError(
          absl::StrCat("rpc_", absl::StatusCodeToString(r.status().code())));
    } else {
      local_.requests++;
      local_.latency.Record(ns);
      if (r->request_id() != request_.request_id()) {
        local_.AddError("request_id_mismatch");
      }
      if (r->verdicts_size() != static_cast<int>(expect_valid_.size())) {
        local_.AddError("wrong_verdict_count");
      } else {
        local_.recipients += r->verdicts_size();
        for (int i = 0; i < r->verdicts_size(); ++i) {
          const v1::RecipientStatus want = expect_valid_[i]
                                               ? v1::RECIPIENT_STATUS_VALID
                                               : v1::RECIPIENT_STATUS_UNKNOWN;
          if (r->verdicts(i).status() != want) {
            local_.AddError("wrong_status");
          }
        }
      }
      local_.client_actions[v1::ClientAction_Name(r->client().action())]++;
    }
    Next();
  }

  void Flush() {
    absl::MutexLock lock(&run_->mu);
    run_->report.MergeCounts(local_);
  }

  Run* const run_;
  QueryGenerator generator_;
  v1::ValidateRequest request_;
  std::vector<bool> expect_valid_;
  Clock::time_point started_;
  Report local_;
};

}  // namespace

absl::StatusOr<Report> RunClient(const BenchOptions& options,
                                 const Workload& workload) {
  client::ClientOptions copts;
  copts.target = options.target;
  copts.deadline = options.deadline;
  copts.transport = TransportOf(options.mode);
  copts.max_reconnect_backoff = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<client::Client>> c =
      client::Client::Create(copts);
  if (!c.ok()) return c.status();
  if (!(*c)->channel()->WaitForConnected(std::chrono::system_clock::now() +
                                         std::chrono::seconds(10))) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to ", options.target));
  }

  Run run;
  run.options = &options;
  run.client = c->get();
  std::vector<std::unique_ptr<Caller>> callers;
  for (int i = 0; i < options.concurrency; ++i) {
    callers.push_back(std::make_unique<Caller>(&run, workload, i));
  }
  double server_cpu0 = -1;
  if (options.server_pid > 0) {
    absl::StatusOr<double> cpu = ProcessCpuSeconds(options.server_pid);
    if (!cpu.ok()) return cpu.status();
    server_cpu0 = *cpu;
  }
  const double client_cpu0 = SelfCpuSeconds();
  const Clock::time_point start = Clock::now();
  run.end = start + absl::ToChronoNanoseconds(options.duration);
  run.active = options.concurrency;
  for (auto& caller : callers) caller->Next();
  run.all_done.WaitForNotification();
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();

  Report report;
  {
    absl::MutexLock lock(&run.mu);
    report.MergeCounts(run.report);
  }
  report.seconds = seconds;
  report.client_cpu_seconds = SelfCpuSeconds() - client_cpu0;
  if (options.server_pid > 0) {
    absl::StatusOr<double> cpu = ProcessCpuSeconds(options.server_pid);
    if (!cpu.ok()) return cpu.status();
    report.server_cpu_seconds = *cpu - server_cpu0;
  }
  const client::ClientStats stats = (*c)->stats();
  if (stats.stream_messages > 0) {
    // Requests per stream message: how far group commit grouped them.
    report.requests_per_message = static_cast<double>(stats.calls) /
                                  static_cast<double>(stats.stream_messages);
  }
  report.mode = ModeName(options.mode);
  report.target = options.target;
  report.batch = options.batch;
  report.concurrency = options.concurrency;
  report.connections = 1;
  report.client_threads = 2;
  return report;
}

}  // namespace rcptguard::bench
