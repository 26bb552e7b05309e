// Fault injection against the real binaries (issue 7, "Faults"): rcptguardd
// SIGKILLed under load from rcptguard-postfix, SIGTERM with calls in
// flight, the watched snapshot turning unreadable, a full disk and a dying
// LDAP server during `rcptguard snapshot build`, and idle or slow clients
// holding connections open. Everything listens on 127.0.0.1; every process
// is stopped by its PID; every wait is bounded.
//
// Bounds on time are generous (a loaded 2-core CI box): they tell "answered
// within the adapter's deadline" from "hung", not fast from slow.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/admin.grpc.pb.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/adapter_process.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/ad_entries.h"
#include "tests/testutil/http.h"
#include "tests/testutil/slapd.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::grpc::health::v1::HealthCheckResponse;
using ::rcptguard::testing::AdapterProcess;
using ::rcptguard::testing::AdDirectory;
using ::rcptguard::testing::AdDirectoryOptions;
using ::rcptguard::testing::BinaryDir;
using ::rcptguard::testing::BulkAdLdif;
using ::rcptguard::testing::ExitCode;
using ::rcptguard::testing::HttpGet;
using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::Netstring;
using ::rcptguard::testing::PolicyRequest;
using ::rcptguard::testing::RawConnection;
using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;
using ::rcptguard::testing::Subprocess;
using ::rcptguard::testing::WaitForFile;
using ::rcptguard::testing::WriteFile;
using ::testing::HasSubstr;

constexpr char kValid[] = "alice@example.com";          // in sample.ldif
constexpr char kUnknown[] = "nobody-here@example.com";  // served, absent

// --- helpers ----------------------------------------------------------------

std::string Cli() { return BinaryDir() + "/clients/rcptguard"; }

struct CliRun {
  int exit_code = -1000;
  std::string output;  // stdout and stderr
};

CliRun RunArgs(const std::vector<std::string>& argv,
               absl::Duration timeout = absl::Seconds(120)) {
  CliRun run;
  absl::StatusOr<int> status = testing::RunCommand(argv, &run.output, timeout);
  if (!status.ok()) {
    run.output = std::string(status.status().message());
    return run;
  }
  run.exit_code = ExitCode(*status);
  return run;
}

void MakeKey(const std::string& path) {
  CliRun run = RunArgs({Cli(), "snapshot", "keygen", "--out", path});
  ASSERT_EQ(run.exit_code, 0) << run.output;
}

std::vector<std::string> BuildFromLdif(const std::string& ldif,
                                       const std::string& key,
                                       const std::string& out,
                                       const std::string& version) {
  return {Cli(),
          "snapshot",
          "build",
          "--from_ldif",
          ldif,
          "--preset",
          "ad",
          "--domains",
          "example.com,example.org",
          "--key",
          key,
          "--out",
          out,
          "--snapshot_version",
          version};
}

std::string SampleLdif() {
  return SourceDir() + "/deploy/examples/sample.ldif";
}

// rcptguardd config serving `snapshot` (built with `key`).
std::string SnapshotConfig(const std::string& key, const std::string& snapshot,
                           const std::string& listen = "127.0.0.1:0",
                           const std::string& watch_interval = "100ms") {
  return absl::StrCat(R"(
listen_address: ")",
                      listen, R"("
fingerprint_key_file: ")",
                      key, R"("
domains { name: "example.com" }
domains { name: "example.org" }
directory { snapshot_file: ")",
                      snapshot, R"(" watch_interval: ")", watch_interval, R"(" }
harvest { disabled: true }
shutdown { grace_ms: 0 drain_timeout_ms: 2000 }
)");
}

// rcptguardd config serving the sample LDIF.
std::string LdifConfig(const std::string& extra) {
  return absl::StrCat(R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" }
domains { name: "example.org" }
directory { ldif_files: ")",
                      SampleLdif(), R"(" preset: "ad" stale_after: "0s" }
harvest { disabled: true }
)",
                      extra);
}

v1::GetStatusResponse Status(const std::shared_ptr<grpc::Channel>& channel) {
  auto admin = v1::Admin::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetStatusResponse status;
  grpc::Status s = admin->GetStatus(&ctx, v1::GetStatusRequest(), &status);
  if (!s.ok())
    status.set_directory_version("unreachable: " + s.error_message());
  return status;
}

// The statuses the server gives `recipients` (dry run), or an empty vector
// when the call fails.
std::vector<v1::RecipientStatus> Lookup(
    const std::shared_ptr<grpc::Channel>& channel,
    const std::vector<std::string>& recipients) {
  auto stub = v1::RecipientValidation::NewStub(channel);
  v1::ValidateRequest request;
  request.set_dry_run(true);
  for (const std::string& r : recipients) request.add_recipients(r);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ValidateResponse response;
  std::vector<v1::RecipientStatus> out;
  if (!stub->Validate(&ctx, request, &response).ok()) return out;
  for (const v1::RecipientVerdict& v : response.verdicts()) {
    out.push_back(v.status());
  }
  return out;
}

// The served directory still answers the sample correctly.
void ExpectSampleAnswers(ServerProcess& server) {
  EXPECT_THAT(Lookup(server.channel(), {kValid, kUnknown}),
              ::testing::ElementsAre(v1::RECIPIENT_STATUS_VALID,
                                     v1::RECIPIENT_STATUS_UNKNOWN));
}

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

// Names in `dir` containing ".tmp." (a writer's temporary file).
std::vector<std::string> TempFiles(const std::string& dir) {
  std::vector<std::string> found;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return found;
  while (dirent* e = ::readdir(d)) {
    if (absl::StrContains(e->d_name, ".tmp.")) found.push_back(e->d_name);
  }
  ::closedir(d);
  return found;
}

// Sum of the samples of `name` whose labels contain every one of `labels`.
double MetricSum(const std::string& text, const std::string& name,
                 const std::vector<std::string>& labels) {
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, name + "{")) continue;
    bool match = true;
    for (const std::string& l : labels) {
      if (!absl::StrContains(line, l)) match = false;
    }
    if (!match) continue;
    double v = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) sum += v;
  }
  return sum;
}

// What the adapter answers for kValid / kUnknown with the server up, and
// when the server does not answer, per protocol and failure policy.
std::string Correct(bool policy, bool valid) {
  if (policy) {
    return valid ? "action=DUNNO\n\n" : "action=550 5.1.1 User unknown\n\n";
  }
  return Netstring(valid ? "OK valid" : "NOTFOUND ");
}
std::string FailureAnswer(bool policy, bool fail_open) {
  if (policy) {
    return fail_open ? "action=DUNNO\n\n"
                     : "action=451 4.3.0 Recipient verification temporarily "
                       "unavailable, try again later\n\n";
  }
  return Netstring(fail_open ? "OK fail-open" : "TEMP rcptguard unavailable");
}

// --- 1. SIGKILL of rcptguardd under load from the adapter -----------------

// One load flow: one persistent connection to one adapter port, asking
// kValid and kUnknown in turn, classifying every answer.
struct Flow {
  std::string name;
  int port = 0;
  bool policy = true;
  bool fail_open = true;

  // Per phase (0 up, 1 killed, 2 restarted, 3 recovered).
  std::atomic<int> correct[4] = {};
  std::atomic<int> failure[4] = {};
  std::atomic<int> other[4] = {};
  std::atomic<int> dropped{0};
  std::atomic<int> slow{0};
  std::atomic<int> streak{0};  // consecutive correct answers
  std::atomic<int64_t> max_latency_ms{0};
  absl::Mutex mu;
  std::string first_other ABSL_GUARDED_BY(mu);
};

TEST(FaultE2eTest, SigkillUnderAdapterLoadFailsPerPolicyThenRecovers) {
  const std::string dir = MakeTempDir("rg-fault-kill");
  const std::string key = dir + "/fingerprint.key";
  const std::string snapshot = dir + "/directory.rgs";
  ASSERT_NO_FATAL_FAILURE(MakeKey(key));
  CliRun build = RunArgs(BuildFromLdif(SampleLdif(), key, snapshot, "v-kill"));
  ASSERT_EQ(build.exit_code, 0) << build.output;

  // A fixed port, so the restarted server is where the adapters' channels
  // reconnect to.
  absl::StatusOr<int> port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string config =
      SnapshotConfig(key, snapshot, absl::StrCat("127.0.0.1:", *port));
  auto server = std::make_unique<ServerProcess>();
  ASSERT_NO_FATAL_FAILURE(server->Start(config));
  ASSERT_TRUE(server->WaitServing(absl::Seconds(30))) << server->log();
  ASSERT_EQ(server->port(), *port);
  const std::string version = Status(server->channel()).directory_version();
  ASSERT_EQ(version, "v-kill");

  AdapterProcess open_adapter, tempfail_adapter;
  ASSERT_NO_FATAL_FAILURE(open_adapter.Start(server->target(), "fail_open"));
  ASSERT_NO_FATAL_FAILURE(tempfail_adapter.Start(server->target(), "tempfail"));

  std::vector<std::unique_ptr<Flow>> flows;
  for (AdapterProcess* a : {&open_adapter, &tempfail_adapter}) {
    for (bool policy : {true, false}) {
      for (int copy = 0; copy < 2; ++copy) {
        auto f = std::make_unique<Flow>();
        f->fail_open = a == &open_adapter;
        f->policy = policy;
        f->port = policy ? a->policy_port() : a->socketmap_port();
        f->name = absl::StrCat(f->fail_open ? "fail_open" : "tempfail", "/",
                               policy ? "policy" : "socketmap", "#", copy);
        flows.push_back(std::move(f));
      }
    }
  }

  std::atomic<int> phase{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& owned : flows) {
    Flow* f = owned.get();
    threads.emplace_back([f, &phase, &stop] {
      RawConnection conn(f->port);
      if (!conn.connected()) {
        ++f->dropped;
        return;
      }
      for (int i = 0; !stop.load(); ++i) {
        const bool valid = i % 2 == 0;
        const std::string rcpt = valid ? kValid : kUnknown;
        const absl::Time start = absl::Now();
        const bool sent =
            conn.Send(f->policy ? PolicyRequest("198.51.100.7", rcpt)
                                : Netstring("rcpt " + rcpt));
        const std::string answer =
            sent ? conn.ReadUntil(f->policy ? "\n\n" : ",") : "";
        const absl::Duration took = absl::Now() - start;
        const int p = phase.load();
        if (answer.empty()) {
          ++f->dropped;  // EOF or no answer within 10 s: stop this flow
          return;
        }
        const int64_t ms = absl::ToInt64Milliseconds(took);
        if (ms > f->max_latency_ms.load()) f->max_latency_ms.store(ms);
        // The adapter's deadline is 300 ms; 3 s means it hung.
        if (took > absl::Seconds(3)) ++f->slow;
        if (answer == Correct(f->policy, valid)) {
          ++f->correct[p];
          ++f->streak;
        } else if (answer == FailureAnswer(f->policy, f->fail_open)) {
          ++f->failure[p];
          f->streak.store(0);
        } else {
          ++f->other[p];
          f->streak.store(0);
          absl::MutexLock lock(&f->mu);
          if (f->first_other.empty()) {
            f->first_other = absl::StrCat("phase ", p, " ", rcpt, ": ",
                                          absl::CEscape(answer));
          }
        }
        absl::SleepFor(absl::Milliseconds(2));
      }
    });
  }
  auto all_have = [&](auto what) {
    for (auto& f : flows) {
      if (!what(*f)) return false;
    }
    return true;
  };

  // Phase 0: the server up; everyone gets correct answers.
  EXPECT_TRUE(WaitUntil(
      [&] { return all_have([](Flow& f) { return f.correct[0] >= 20; }); },
      absl::Seconds(30)));

  // Phase 1: SIGKILL; every request is answered per the failure policy.
  phase.store(1);
  server->process().Signal(SIGKILL);
  std::optional<int> killed = server->process().Wait(absl::Seconds(10));
  ASSERT_TRUE(killed.has_value());
  EXPECT_TRUE(WIFSIGNALED(*killed));
  EXPECT_TRUE(WaitUntil(
      [&] { return all_have([](Flow& f) { return f.failure[1] >= 10; }); },
      absl::Seconds(30)));
  // Down long enough for the adapters' channels to back off between
  // reconnection attempts, as in a real restart.
  absl::SleepFor(absl::Seconds(2));

  // Phase 2: the same snapshot, the same port; the channels reconnect (gRPC
  // backs off between attempts, so allow for its backoff).
  server = std::make_unique<ServerProcess>();
  ASSERT_NO_FATAL_FAILURE(server->Start(config));
  ASSERT_TRUE(server->WaitServing(absl::Seconds(30))) << server->log();
  const absl::Time restarted = absl::Now();
  for (auto& f : flows) f->streak.store(0);
  phase.store(2);
  EXPECT_TRUE(WaitUntil(
      [&] { return all_have([](Flow& f) { return f.streak >= 20; }); },
      absl::Seconds(60)))
      << "the adapters did not get correct answers again";
  std::cerr << "correct answers again "
            << absl::FormatDuration(absl::Now() - restarted)
            << " after the restarted server was serving\n";

  // Phase 3: recovered; nothing but correct answers.
  phase.store(3);
  absl::SleepFor(absl::Seconds(1));
  stop.store(true);
  for (auto& t : threads) t.join();

  for (auto& f : flows) {
    std::cerr << f->name << ": correct/failure-policy answers up "
              << f->correct[0] << "/" << f->failure[0] << ", killed "
              << f->correct[1] << "/" << f->failure[1] << ", restarted "
              << f->correct[2] << "/" << f->failure[2] << ", recovered "
              << f->correct[3] << "/" << f->failure[3] << ", max "
              << f->max_latency_ms.load() << " ms\n";
    SCOPED_TRACE(f->name);
    EXPECT_EQ(f->dropped.load(), 0) << "a connection was dropped";
    EXPECT_EQ(f->slow.load(), 0) << "max " << f->max_latency_ms.load() << " ms";
    EXPECT_GT(f->correct[0].load(), 0);
    EXPECT_EQ(f->failure[0].load(), 0);
    EXPECT_GT(f->failure[1].load(), 0);
    EXPECT_GT(f->correct[3].load(), 0);
    EXPECT_EQ(f->failure[3].load(), 0);
    for (int p = 0; p < 4; ++p) {
      absl::MutexLock lock(&f->mu);
      EXPECT_EQ(f->other[p].load(), 0) << f->first_other;
    }
  }
  EXPECT_EQ(Status(server->channel()).directory_version(), version);
  EXPECT_TRUE(open_adapter.process().running()) << open_adapter.log();
  EXPECT_TRUE(tempfail_adapter.process().running()) << tempfail_adapter.log();
  EXPECT_THAT(tempfail_adapter.log(), HasSubstr("upstream_failure"));
  std::filesystem::remove_all(dir);
}

// --- 2. SIGTERM with calls in flight --------------------------------------
// server_e2e_test covers health turning NOT_SERVING and one open stream
// answered during the drain. Here: many concurrent unary calls with big
// batches and several streams that go on past the end of the grace period;
// health polled throughout; a call that never ends is cut at the drain
// timeout.

struct CallRecord {
  absl::Time start, end;
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
  bool answers_ok = false;
};

v1::ValidateRequest BigBatch(int n) {
  v1::ValidateRequest request;
  request.set_dry_run(true);
  for (int i = 0; i < n; ++i) {
    request.add_recipients(i % 2 == 0 ? kValid : kUnknown);
  }
  return request;
}

bool BatchAnswered(const v1::ValidateResponse& response, int n) {
  if (response.verdicts_size() != n) return false;
  for (int i = 0; i < n; ++i) {
    if (response.verdicts(i).status() != (i % 2 == 0
                                              ? v1::RECIPIENT_STATUS_VALID
                                              : v1::RECIPIENT_STATUS_UNKNOWN)) {
      return false;
    }
  }
  return true;
}

TEST(FaultE2eTest, SigtermDrainsEveryCallInFlightAndExitsZero) {
  constexpr int kGraceMs = 2000;
  constexpr int kDrainMs = 15000;
  constexpr int kBatch = 5000;
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(LdifConfig(
      absl::StrCat("limits { max_recipients_per_request: 10000 }\n"
                   "shutdown { grace_ms: ",
                   kGraceMs, " drain_timeout_ms: ", kDrainMs, " }\n"))));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();

  std::atomic<bool> stop{false};
  std::atomic<int64_t> sigterm_at_ns{0};  // 0 until SIGTERM is sent
  absl::Mutex mu;
  std::vector<CallRecord> calls;  // guarded by mu
  std::vector<std::pair<absl::Time, HealthCheckResponse::ServingStatus>>
      health;  // guarded by mu
  std::atomic<int> streams_open{0};
  std::vector<std::thread> threads;

  // Unary calls with big batches, back to back, each on its own channel.
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      auto stub = v1::RecipientValidation::NewStub(server.NewChannel());
      const v1::ValidateRequest request = BigBatch(kBatch);
      while (!stop.load()) {
        CallRecord r;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
        v1::ValidateResponse response;
        r.start = absl::Now();
        grpc::Status s = stub->Validate(&ctx, request, &response);
        r.end = absl::Now();
        r.code = s.error_code();
        r.message = s.error_message();
        r.answers_ok = s.ok() && BatchAnswered(response, kBatch);
        {
          absl::MutexLock lock(&mu);
          calls.push_back(r);
        }
        if (!s.ok()) absl::SleepFor(absl::Milliseconds(20));
      }
    });
  }

  // Streams that keep asking until 1.5 s into the drain (after the grace
  // period, i.e. after the server stopped accepting new calls), then close.
  struct StreamResult {
    int answered = 0, answered_in_drain = 0;
    bool all_ok = true;
    grpc::Status finish;
  };
  std::vector<StreamResult> stream_results(2);
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      StreamResult& res = stream_results[t];
      auto stub = v1::RecipientValidation::NewStub(server.NewChannel());
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
      auto stream = stub->ValidateStream(&ctx);
      v1::ValidateRequest request = BigBatch(1000);
      for (uint64_t id = 1;; ++id) {
        request.set_request_id(id);
        v1::ValidateResponse response;
        if (!stream->Write(request) || !stream->Read(&response)) {
          res.all_ok = false;
          break;
        }
        ++res.answered;
        if (response.request_id() != id || !BatchAnswered(response, 1000)) {
          res.all_ok = false;
        }
        if (id == 1) ++streams_open;
        const int64_t sent = sigterm_at_ns.load();
        if (sent != 0) {
          const absl::Time now = absl::Now();
          const absl::Time drain_start =
              absl::FromUnixNanos(sent) + absl::Milliseconds(kGraceMs);
          if (now > drain_start + absl::Milliseconds(200)) {
            ++res.answered_in_drain;
          }
          if (now > drain_start + absl::Milliseconds(1500)) break;
        }
        absl::SleepFor(absl::Milliseconds(100));
      }
      stream->WritesDone();
      res.finish = stream->Finish();
    });
  }

  // Health, polled on a channel of its own.
  threads.emplace_back([&] {
    auto stub = grpc::health::v1::Health::NewStub(server.NewChannel());
    while (!stop.load()) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(1));
      grpc::health::v1::HealthCheckResponse response;
      grpc::Status s =
          stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &response);
      {
        absl::MutexLock lock(&mu);
        health.emplace_back(absl::Now(), s.ok() ? response.status()
                                                : HealthCheckResponse::UNKNOWN);
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  });

  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::MutexLock lock(&mu);
        return streams_open.load() == 2 && calls.size() >= 6;
      },
      absl::Seconds(30)));
  const absl::Time t0 = absl::Now();
  sigterm_at_ns.store(absl::ToUnixNanos(t0));
  server.process().Signal(SIGTERM);
  std::optional<int> exit_status = server.process().Wait(
      absl::Milliseconds(kGraceMs + kDrainMs) + absl::Seconds(10));
  const absl::Time exited = absl::Now();
  stop.store(true);
  for (auto& t : threads) t.join();

  ASSERT_TRUE(exit_status.has_value()) << "no exit within the drain timeout";
  EXPECT_EQ(ExitCode(*exit_status), 0) << server.log();
  EXPECT_LT(exited - t0, absl::Milliseconds(kGraceMs + kDrainMs));
  // The streams closed 1.5 s into the drain; the server need not wait out
  // the rest of the 15 s.
  EXPECT_LT(exited - t0, absl::Milliseconds(kGraceMs) + absl::Seconds(8));

  absl::MutexLock lock(&mu);
  // Health: NOT_SERVING first, while calls were still answered; never
  // SERVING again.
  std::optional<absl::Time> not_serving;
  int serving_after = 0;
  for (const auto& [at, st] : health) {
    if (at < t0) continue;
    if (st == HealthCheckResponse::NOT_SERVING && !not_serving) {
      not_serving = at;
    }
    if (st == HealthCheckResponse::SERVING && not_serving) ++serving_after;
  }
  ASSERT_TRUE(not_serving.has_value()) << "health never turned NOT_SERVING";
  EXPECT_LT(*not_serving - t0, absl::Milliseconds(kGraceMs));
  EXPECT_EQ(serving_after, 0);

  int ok_after_not_serving = 0, failed_before_drain = 0, other_codes = 0;
  int wrong_answers = 0;
  for (const CallRecord& c : calls) {
    if (c.code == grpc::StatusCode::OK) {
      if (!c.answers_ok) ++wrong_answers;
      if (c.start > *not_serving) ++ok_after_not_serving;
    } else if (c.code == grpc::StatusCode::UNAVAILABLE ||
               c.code == grpc::StatusCode::CANCELLED) {
      // New calls are refused once the grace period is over (UNAVAILABLE;
      // CANCELLED for one that reached gRPC as it shut down but no handler
      // had taken yet). Calls started well before that, and so in flight
      // when it ended, must not fail.
      if (c.start < t0 + absl::Milliseconds(kGraceMs - 700)) {
        ++failed_before_drain;
        ADD_FAILURE() << "in-flight call started "
                      << absl::FormatDuration(c.start - t0)
                      << " after SIGTERM failed: " << c.message;
      }
    } else {
      ++other_codes;
      ADD_FAILURE() << "call started " << absl::FormatDuration(c.start - t0)
                    << " after SIGTERM, ended "
                    << absl::FormatDuration(c.end - t0) << " after: code "
                    << c.code << " " << c.message;
    }
  }
  std::cerr << calls.size() << " unary calls, " << ok_after_not_serving
            << " answered after health turned NOT_SERVING ("
            << absl::FormatDuration(*not_serving - t0)
            << " after SIGTERM); exit after "
            << absl::FormatDuration(exited - t0) << "\n";
  EXPECT_GT(ok_after_not_serving, 0)
      << "calls must still be answered while health is NOT_SERVING";
  EXPECT_EQ(failed_before_drain, 0);
  EXPECT_EQ(other_codes, 0);
  EXPECT_EQ(wrong_answers, 0);
  for (const StreamResult& r : stream_results) {
    EXPECT_TRUE(r.all_ok);
    EXPECT_GT(r.answered_in_drain, 0) << "no answer after the grace period";
    EXPECT_TRUE(r.finish.ok()) << r.finish.error_message();
  }
  EXPECT_THAT(server.log(), HasSubstr("event=draining"));
}

TEST(FaultE2eTest, DrainTimeoutCutsACallThatNeverEnds) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(
      LdifConfig("shutdown { grace_ms: 200 drain_timeout_ms: 1500 }\n")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  auto stub = v1::RecipientValidation::NewStub(server.channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub->ValidateStream(&ctx);
  v1::ValidateRequest request = BigBatch(10);
  v1::ValidateResponse response;
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_TRUE(BatchAnswered(response, 10));

  const absl::Time t0 = absl::Now();
  server.process().Signal(SIGTERM);
  // The stream is never closed by the client: the drain timeout ends it.
  std::optional<int> exit_status = server.process().Wait(absl::Seconds(15));
  const absl::Duration took = absl::Now() - t0;
  ASSERT_TRUE(exit_status.has_value()) << "held open by a stream";
  EXPECT_EQ(ExitCode(*exit_status), 0) << server.log();
  EXPECT_GE(took, absl::Milliseconds(1200)) << "did not wait for the stream";
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_FALSE(stream->Finish().ok());
}

// --- 3. The watched snapshot becomes unreadable ---------------------------

class FaultE2eWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("rg-fault-watch");
    key_ = dir_ + "/fingerprint.key";
    snapshots_ = dir_ + "/snapshots";
    snapshot_ = snapshots_ + "/directory.rgs";
    ASSERT_EQ(::mkdir(snapshots_.c_str(), 0755), 0);
    ASSERT_NO_FATAL_FAILURE(MakeKey(key_));
    CliRun build =
        RunArgs(BuildFromLdif(SampleLdif(), key_, snapshot_, "v-watch"));
    ASSERT_EQ(build.exit_code, 0) << build.output;
    ASSERT_NO_FATAL_FAILURE(server_.Start(SnapshotConfig(key_, snapshot_)));
    ASSERT_TRUE(server_.WaitServing(absl::Seconds(30))) << server_.log();
    ASSERT_EQ(Status(server_.channel()).directory_version(), "v-watch");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // The served directory is unchanged and answers correctly.
  void ExpectUnchanged() {
    EXPECT_EQ(Status(server_.channel()).directory_version(), "v-watch");
    ExpectSampleAnswers(server_);
  }
  uint64_t FailedTotal() {
    return Status(server_.channel()).last_reload().failed_total();
  }

  std::string dir_, key_, snapshots_, snapshot_;
  ServerProcess server_;
};

TEST_F(FaultE2eWatchTest, UnreadableSnapshotKeepsServingAndIsReported) {
  // (a) Truncated in place: the watcher tries it, and refuses it.
  struct stat st;
  ASSERT_EQ(::stat(snapshot_.c_str(), &st), 0);
  ASSERT_EQ(::truncate(snapshot_.c_str(), st.st_size / 2), 0);
  ASSERT_TRUE(WaitUntil([&] { return FailedTotal() >= 1; }, absl::Seconds(10)))
      << server_.log();
  v1::ReloadStatus last = Status(server_.channel()).last_reload();
  EXPECT_EQ(last.result(), "failed");
  EXPECT_EQ(last.trigger(), "watch");
  EXPECT_FALSE(last.reason().empty());
  EXPECT_FALSE(last.message().empty());
  ExpectUnchanged();

  // (b) Replaced by a directory.
  ASSERT_EQ(::unlink(snapshot_.c_str()), 0);
  ASSERT_EQ(::mkdir(snapshot_.c_str(), 0755), 0);
  ASSERT_TRUE(WaitUntil([&] { return FailedTotal() >= 2; }, absl::Seconds(10)))
      << server_.log();
  last = Status(server_.channel()).last_reload();
  EXPECT_EQ(last.result(), "failed");
  EXPECT_EQ(last.trigger(), "watch");
  ExpectUnchanged();

  // (c) Replaced by a dangling symlink. (The watcher waits quietly for a
  // file to appear; see VanishedSnapshotIsReportedByTheWatcher.) SIGHUP
  // tries it and reports the failure.
  ASSERT_EQ(::rmdir(snapshot_.c_str()), 0);
  ASSERT_EQ(::symlink((dir_ + "/no-such-file.rgs").c_str(), snapshot_.c_str()),
            0);
  absl::SleepFor(absl::Milliseconds(500));
  ExpectUnchanged();
  const uint64_t before_hup = FailedTotal();
  server_.process().Signal(SIGHUP);
  ASSERT_TRUE(
      WaitUntil([&] { return FailedTotal() > before_hup; }, absl::Seconds(10)))
      << server_.log();
  last = Status(server_.channel()).last_reload();
  EXPECT_EQ(last.result(), "failed");
  EXPECT_EQ(last.trigger(), "sighup");
  EXPECT_EQ(last.reason(), "io");
  ExpectUnchanged();

  // (d) The watched folder vanishes; Admin.Reload says why it cannot load.
  ASSERT_EQ(::unlink(snapshot_.c_str()), 0);
  ASSERT_EQ(::rename(snapshots_.c_str(), (snapshots_ + ".gone").c_str()), 0);
  absl::SleepFor(absl::Milliseconds(500));
  ExpectUnchanged();
  {
    auto admin = v1::Admin::NewStub(server_.channel());
    grpc::ClientContext ctx;
    v1::ReloadResponse response;
    grpc::Status s = admin->Reload(&ctx, v1::ReloadRequest(), &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(snapshot_));
  }
  last = Status(server_.channel()).last_reload();
  EXPECT_EQ(last.result(), "failed");
  EXPECT_EQ(last.trigger(), "admin");
  EXPECT_EQ(last.reason(), "io");
  ExpectUnchanged();

  // Reported in the log and in /metrics, as many times as in status.
  const uint64_t failed = FailedTotal();
  EXPECT_GE(failed, 4u);
  const std::string metrics = HttpGet(server_.metrics_port(), "/metrics");
  EXPECT_EQ(MetricSum(metrics, "rcptguard_directory_reloads_total",
                      {"result=\"failed\""}),
            static_cast<double>(failed))
      << metrics;
  EXPECT_GE(MetricSum(metrics, "rcptguard_directory_reloads_total",
                      {"result=\"failed\"", "reason=\"io\""}),
            2.0);
  const std::string log = server_.log();
  EXPECT_THAT(log, HasSubstr("event=reload_failed"));
  EXPECT_THAT(log, HasSubstr("kept_serving=v-watch"));
  EXPECT_TRUE(server_.process().running());

  // A good snapshot back in place is taken up by the watcher.
  ASSERT_EQ(::rename((snapshots_ + ".gone").c_str(), snapshots_.c_str()), 0);
  CliRun build =
      RunArgs(BuildFromLdif(SampleLdif(), key_, snapshot_, "v-watch-2"));
  ASSERT_EQ(build.exit_code, 0) << build.output;
  EXPECT_TRUE(WaitUntil(
      [&] {
        return Status(server_.channel()).directory_version() == "v-watch-2";
      },
      absl::Seconds(10)))
      << server_.log();
  ExpectSampleAnswers(server_);
}

// Issue 19: a FIFO at the snapshot path blocked open(2) in the reload
// forever; later reloads hung behind it and SIGTERM never completed. Now
// the watcher and Admin.Reload fail at once, naming it, and the server
// keeps serving and shuts down.
TEST_F(FaultE2eWatchTest, FifoAtTheSnapshotPathFailsPromptly) {
  ASSERT_EQ(::unlink(snapshot_.c_str()), 0);
  ASSERT_EQ(::mkfifo(snapshot_.c_str(), 0644), 0);
  // The watcher sees a new file and tries it.
  ASSERT_TRUE(WaitUntil([&] { return FailedTotal() >= 1; }, absl::Seconds(10)))
      << server_.log();
  ExpectUnchanged();
  for (int i = 0; i < 2; ++i) {
    auto admin = v1::Admin::NewStub(server_.channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(10));
    v1::ReloadResponse response;
    const absl::Time start = absl::Now();
    grpc::Status s = admin->Reload(&ctx, v1::ReloadRequest(), &response);
    EXPECT_LT(absl::Now() - start, absl::Seconds(5));
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    EXPECT_THAT(
        s.error_message(),
        HasSubstr("snapshot " + snapshot_ + ": is a FIFO, not a regular file"));
  }
  v1::ReloadStatus last = Status(server_.channel()).last_reload();
  EXPECT_EQ(last.result(), "failed");
  EXPECT_EQ(last.trigger(), "admin");
  ExpectUnchanged();

  const absl::Time t0 = absl::Now();
  server_.process().Signal(SIGTERM);
  std::optional<int> exit_status = server_.process().Wait(absl::Seconds(15));
  ASSERT_TRUE(exit_status.has_value()) << "SIGTERM did not complete";
  EXPECT_EQ(ExitCode(*exit_status), 0) << server_.log();
  EXPECT_LT(absl::Now() - t0, absl::Seconds(10));
}

// A snapshot that vanishes (deleted, or replaced by a dangling symlink)
// should be reported by the watcher itself, without waiting for an operator
// to send SIGHUP: otherwise nothing says exports stopped arriving until
// the directory turns stale.
TEST_F(FaultE2eWatchTest, VanishedSnapshotIsReportedByTheWatcher) {
  ASSERT_EQ(::unlink(snapshot_.c_str()), 0);
  ASSERT_EQ(::symlink((dir_ + "/no-such-file.rgs").c_str(), snapshot_.c_str()),
            0);
  const bool reported =
      WaitUntil([&] { return FailedTotal() >= 1; }, absl::Seconds(3));
  ExpectUnchanged();
  ASSERT_TRUE(reported) << server_.log();
  v1::ReloadStatus last = Status(server_.channel()).last_reload();
  EXPECT_EQ(last.result(), "failed");
  EXPECT_EQ(last.trigger(), "watch");
  EXPECT_EQ(last.reason(), "io");
  // Reported once per disappearance, not at every watch tick.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(FailedTotal(), 1u);
}

// --- 4. Disk full during an export ----------------------------------------

// A small tmpfs mounted for the test (root only), unmounted by path.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, uint64_t bytes) : path_(path) {
    const std::string options = absl::StrCat("size=", bytes, ",mode=0755");
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                       options.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

// The disk-full scenario in `dir`; the tmpfs is gone when it returns.
void ExpectDiskFullKeepsTheServedSnapshot(const std::string& dir) {
  const std::string key = dir + "/fingerprint.key";
  const std::string snapshots = dir + "/snapshots";
  const std::string target = snapshots + "/directory.rgs";
  ASSERT_EQ(::mkdir(snapshots.c_str(), 0755), 0);
  ASSERT_NO_FATAL_FAILURE(MakeKey(key));
  CliRun build =
      RunArgs(BuildFromLdif(SampleLdif(), key, dir + "/old.rgs", "v-old"));
  ASSERT_EQ(build.exit_code, 0) << build.output;
  const std::string old_bytes = ReadFile(dir + "/old.rgs");
  ASSERT_FALSE(old_bytes.empty());
  ASSERT_TRUE(WriteFile(dir + "/big.ldif", BulkAdLdif(100000, "new")).ok());

  // The watched folder on a tmpfs with room for the old snapshot and
  // 256 KiB more, when this process may mount; a plain folder otherwise.
  TmpfsMount tmpfs(snapshots, (old_bytes.size() / 4096 + 1) * 4096 + 262144);
  ASSERT_TRUE(WriteFile(target, old_bytes).ok());

  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(SnapshotConfig(key, target)));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  ASSERT_EQ(Status(server.channel()).directory_version(), "v-old");

  auto expect_nothing_changed = [&](const CliRun& run, const char* what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_THAT(run.output, HasSubstr("nothing written")) << run.output;
    EXPECT_THAT(TempFiles(snapshots), ::testing::IsEmpty());
    EXPECT_EQ(ReadFile(target), old_bytes) << "the served file was touched";
    absl::SleepFor(absl::Milliseconds(500));  // several watch intervals
    EXPECT_EQ(Status(server.channel()).directory_version(), "v-old");
    ExpectSampleAnswers(server);
  };

  // (a) A file size limit (RLIMIT_FSIZE, 64 KiB): write() fails with EFBIG
  // once the process ignores SIGXFSZ, which by default kills it.
  std::vector<std::string> limited = {"/bin/bash", "-c",
                                      "ulimit -f 64 && exec \"$0\" \"$@\""};
  for (const std::string& a :
       BuildFromLdif(dir + "/big.ldif", key, target, "v-new")) {
    limited.push_back(a);
  }
  CliRun fsize = RunArgs(limited);
  expect_nothing_changed(fsize, "RLIMIT_FSIZE");
  EXPECT_THAT(fsize.output, HasSubstr("File too large"));

  // (b) A really full file system (ENOSPC).
  if (!tmpfs.mounted()) {
    std::cerr << "[ SKIPPED  ] ENOSPC part: cannot mount a tmpfs ("
              << tmpfs.error() << ")\n";
  } else {
    CliRun full =
        RunArgs(BuildFromLdif(dir + "/big.ldif", key, target, "v-new"));
    expect_nothing_changed(full, "ENOSPC");
    EXPECT_THAT(full.output, HasSubstr("No space left on device"));
  }
  EXPECT_TRUE(server.process().running());
  server.process().Stop();
}

TEST(FaultE2eTest, DiskFullDuringExportKeepsTheServedSnapshot) {
  const std::string dir = MakeTempDir("rg-fault-disk");
  ASSERT_FALSE(dir.empty());
  ExpectDiskFullKeepsTheServedSnapshot(dir);
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

// --- 5. The LDAP server goes away mid-export ------------------------------

// Bytes `pid` has written so far (/proc/PID/io wchar), or -1.
int64_t BytesWritten(pid_t pid) {
  const std::string io = ReadFile(absl::StrCat("/proc/", pid, "/io"));
  for (absl::string_view line : absl::StrSplit(io, '\n')) {
    if (absl::ConsumePrefix(&line, "wchar: ")) {
      int64_t n = 0;
      if (absl::SimpleAtoi(line, &n)) return n;
    }
  }
  return -1;
}

TEST(FaultE2eTest, LdapServerKilledMidExportKeepsTheServedSnapshot) {
  if (!testing::SlapdServer::Installed()) GTEST_SKIP() << "slapd not installed";
  constexpr char kPassword[] = "Svc-Pa55-fault-e2e-9c3e";
  AdDirectoryOptions options;
  options.users = 2400;
  options.service_password = kPassword;
  const AdDirectory d = testing::MakeAdDirectory(options);
  testing::SlapdOptions slapd_options;
  slapd_options.size_limit =
      "size.soft=500 size.hard=500 size.prtotal=unlimited";
  absl::StatusOr<std::unique_ptr<testing::SlapdServer>> slapd =
      testing::SlapdServer::Start(d.ldif, slapd_options);
  ASSERT_TRUE(slapd.ok()) << slapd.status();

  const std::string dir = MakeTempDir("rg-fault-ldap");
  const std::string key = dir + "/fingerprint.key";
  const std::string password = dir + "/ldap-password";
  const std::string target = dir + "/directory.rgs";
  ASSERT_NO_FATAL_FAILURE(MakeKey(key));
  ASSERT_TRUE(WriteFile(password, absl::StrCat(kPassword, "\n")).ok());
  ::chmod(password.c_str(), 0600);
  auto export_args = [&](const std::string& version, const char* page_size) {
    return std::vector<std::string>{Cli(),
                                    "snapshot",
                                    "build",
                                    "--from_ldap",
                                    (*slapd)->uri(),
                                    "--base_dn",
                                    testing::kAdSuffix,
                                    "--bind_dn",
                                    testing::kAdServiceDn,
                                    "--password_file",
                                    password,
                                    "--page_size",
                                    page_size,
                                    "--timeout",
                                    "10s",
                                    "--preset",
                                    "ad",
                                    "--domains",
                                    "example.com,example.org",
                                    "--key",
                                    key,
                                    "--out",
                                    target,
                                    "--snapshot_version",
                                    version};
  };
  CliRun first = RunArgs(export_args("v-ldap-1", "200"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string old_bytes = ReadFile(target);

  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(SnapshotConfig(key, target)));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  ASSERT_EQ(Status(server.channel()).directory_version(), "v-ldap-1");
  std::vector<std::string> valid, unknown;
  for (const std::string& a : d.valid) {
    if (valid.size() < 20 && (absl::EndsWith(a, "@example.com") ||
                              absl::EndsWith(a, "@example.org"))) {
      valid.push_back(a);
    }
  }
  for (const std::string& a : d.unknown) {
    if (unknown.size() < 20 && (absl::EndsWith(a, "@example.com") ||
                                absl::EndsWith(a, "@example.org"))) {
      unknown.push_back(a);
    }
  }
  ASSERT_FALSE(valid.empty());
  ASSERT_FALSE(unknown.empty());
  auto expect_served = [&] {
    EXPECT_EQ(Status(server.channel()).directory_version(), "v-ldap-1");
    for (v1::RecipientStatus s : Lookup(server.channel(), valid)) {
      EXPECT_EQ(s, v1::RECIPIENT_STATUS_VALID);
    }
    for (v1::RecipientStatus s : Lookup(server.channel(), unknown)) {
      EXPECT_EQ(s, v1::RECIPIENT_STATUS_UNKNOWN);
    }
  };
  expect_served();

  // Small pages make the export a few hundred round trips; slapd is killed
  // once it has sent ~64 KiB of them.
  const int64_t base = BytesWritten((*slapd)->pid());
  ASSERT_GE(base, 0);
  const std::string log = dir + "/export.log";
  Subprocess cli;
  ASSERT_TRUE(cli.Start(export_args("v-ldap-2", "10"), log, log).ok());
  bool killed = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (cli.running() && absl::Now() < deadline) {
    if (BytesWritten((*slapd)->pid()) - base >= 64 * 1024) {
      (*slapd)->Signal(SIGKILL);
      killed = true;
      break;
    }
    absl::SleepFor(absl::Microseconds(200));
  }
  std::optional<int> status = cli.Wait(absl::Seconds(60));
  ASSERT_TRUE(status.has_value());
  const std::string output = ReadFile(log);
  ASSERT_TRUE(killed) << "the export ended before slapd was killed:\n"
                      << output;
  std::cerr << "export: " << output.substr(output.rfind("rcptguard snapshot"));
  EXPECT_EQ(ExitCode(*status), 1) << output;
  EXPECT_THAT(output, HasSubstr("failed on page "));
  EXPECT_THAT(output, HasSubstr("nothing written"));
  EXPECT_THAT(output, ::testing::Not(HasSubstr("failed on page 1 ")))
      << "killed before the first pages";
  EXPECT_EQ(ReadFile(target), old_bytes);
  EXPECT_THAT(TempFiles(dir), ::testing::IsEmpty());
  absl::SleepFor(absl::Milliseconds(500));  // several watch intervals
  expect_served();
  EXPECT_TRUE(server.process().running());
  std::filesystem::remove_all(dir);
}

// --- 6. Idle and slow (slowloris) clients ---------------------------------

TEST(FaultE2eTest, IdleAndSlowClientsDoNotHoldUpOthers) {
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(LdifConfig("")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  AdapterProcess adapter;
  ASSERT_NO_FATAL_FAILURE(adapter.Start(server.target(), "tempfail"));

  constexpr int kIdle = 300;  // per port: connect, never send
  constexpr int kSlow = 30;   // per port: one byte a second
  const std::vector<int> ports = {server.port(), adapter.policy_port(),
                                  adapter.socketmap_port()};
  const std::vector<std::string> slow_payloads = {
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", PolicyRequest("192.0.2.9", kValid),
      Netstring(std::string("rcpt ") + kValid)};
  std::vector<std::unique_ptr<RawConnection>> idle, slow;
  std::vector<size_t> slow_kind;
  for (size_t p = 0; p < ports.size(); ++p) {
    for (int i = 0; i < kIdle; ++i) {
      idle.push_back(std::make_unique<RawConnection>(ports[p]));
      ASSERT_TRUE(idle.back()->connected()) << "port " << ports[p] << " #" << i;
    }
    for (int i = 0; i < kSlow; ++i) {
      slow.push_back(std::make_unique<RawConnection>(ports[p]));
      ASSERT_TRUE(slow.back()->connected());
      slow_kind.push_back(p);
    }
  }
  std::atomic<bool> stop{false};
  std::thread dripper([&] {
    for (size_t at = 0; !stop.load(); ++at) {
      for (size_t i = 0; i < slow.size(); ++i) {
        const std::string& payload = slow_payloads[slow_kind[i]];
        // Never the last byte: the request stays incomplete.
        if (at + 1 < payload.size()) slow[i]->Send(payload.substr(at, 1));
      }
      for (int t = 0; t < 10 && !stop.load(); ++t) {
        absl::SleepFor(absl::Milliseconds(100));
      }
    }
  });

  // Meanwhile other clients: gRPC on a long-lived and on new channels, and
  // the adapter on new connections, for 6 s.
  absl::Duration max_grpc, max_policy, max_socketmap;
  int probes = 0, wrong = 0;
  const absl::Time end = absl::Now() + absl::Seconds(6);
  for (int i = 0; absl::Now() < end; ++i, ++probes) {
    absl::Time start = absl::Now();
    std::vector<v1::RecipientStatus> got =
        Lookup(i % 5 == 0 ? server.NewChannel() : server.channel(),
               {kValid, kUnknown});
    max_grpc = std::max(max_grpc, absl::Now() - start);
    if (got != std::vector<v1::RecipientStatus>{v1::RECIPIENT_STATUS_VALID,
                                                v1::RECIPIENT_STATUS_UNKNOWN}) {
      ++wrong;
    }
    {
      start = absl::Now();
      RawConnection policy(adapter.policy_port(), 5);
      std::string answer;
      if (policy.connected() &&
          policy.Send(PolicyRequest("192.0.2.10", kUnknown))) {
        answer = policy.ReadUntil("\n\n");
      }
      max_policy = std::max(max_policy, absl::Now() - start);
      if (answer != Correct(true, false)) ++wrong;
    }
    {
      start = absl::Now();
      RawConnection socketmap(adapter.socketmap_port(), 5);
      std::string answer;
      if (socketmap.connected() &&
          socketmap.Send(Netstring(std::string("rcpt ") + kValid))) {
        answer = socketmap.ReadUntil(",");
      }
      max_socketmap = std::max(max_socketmap, absl::Now() - start);
      if (answer != Correct(false, true)) ++wrong;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  stop.store(true);
  dripper.join();

  std::cerr << probes << " probes; max latency gRPC "
            << absl::FormatDuration(max_grpc) << ", policy "
            << absl::FormatDuration(max_policy) << ", socketmap "
            << absl::FormatDuration(max_socketmap) << "\n";
  EXPECT_GT(probes, 10);
  EXPECT_EQ(wrong, 0);
  EXPECT_LT(max_grpc, absl::Seconds(1));
  EXPECT_LT(max_policy, absl::Seconds(1));
  EXPECT_LT(max_socketmap, absl::Seconds(1));
  EXPECT_TRUE(server.process().running()) << server.log();
  EXPECT_TRUE(adapter.process().running()) << adapter.log();
  EXPECT_EQ(server.Health(), HealthCheckResponse::SERVING);
  // The idle connections are still open (neither side has a short idle
  // timeout) and the adapter still answers on a new one.
  RawConnection after(adapter.policy_port(), 5);
  ASSERT_TRUE(after.connected());
  ASSERT_TRUE(after.Send(PolicyRequest("192.0.2.11", kValid)));
  EXPECT_EQ(after.ReadUntil("\n\n"), Correct(true, true));
}

}  // namespace
}  // namespace rcptguard
