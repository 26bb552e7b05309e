// Reloads under load against the real rcptguardd: a client keeps validating
// while snapshots are swapped 20 times (through Admin.Reload, SIGHUP and the
// file watcher). No call may fail, every answer must match exactly one of
// the two directories, and the versions a client sees only move forward.
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/admin.grpc.pb.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "server/directory/directory.h"
#include "server/snapshot/snapshot_file.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/http.h"
#include "tests/testutil/snapshot_files.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::WriteFile;
using ::rcptguard::testing::WriteSnapshotFile;

constexpr char kKeyHex[] = "8f0e1d2c3b4a59687766554433221100";
constexpr int kUsers = 20000;

directory::SipKey Key() {
  std::string bytes;
  for (int i = 0; i < 16; ++i) {
    bytes.push_back(static_cast<char>(
        std::stoi(std::string(kKeyHex + 2 * i, 2), nullptr, 16)));
  }
  return *directory::SipKey::FromBytes(bytes);
}

// Directory A holds a0..aN and common0..commonN; B holds b0..bN and the
// same common addresses. Both are the same size, so the shrink guard
// passes every swap.
void WriteSnapshot(const std::string& path, const std::string& version,
                   bool a) {
  std::vector<directory::DomainPolicy> domains(1);
  domains[0].name = "example.com";
  std::vector<std::string> addresses;
  for (int i = 0; i < kUsers; ++i) {
    addresses.push_back(absl::StrCat(a ? "a" : "b", i, "@example.com"));
    addresses.push_back(absl::StrCat("common", i, "@example.com"));
  }
  snapshot::SnapshotMetadata meta;
  meta.version = version;
  meta.source = "reload-test";
  ASSERT_TRUE(WriteSnapshotFile(path, Key(), domains, addresses, meta).ok());
}

TEST(ReloadE2eTest, TwentySwapsUnderLoadLoseNothing) {
  const std::string dir = MakeTempDir("rg-reload");
  const std::string snapshot = dir + "/directory.rgs";
  ASSERT_TRUE(WriteFile(dir + "/key", kKeyHex).ok());
  ASSERT_NO_FATAL_FAILURE(WriteSnapshot(snapshot, "v00", true));

  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(
      server.Start(absl::StrCat(R"(
listen_address: "127.0.0.1:0"
fingerprint_key_file: ")",
                                dir, R"(/key"
domains { name: "example.com" }
directory { snapshot_file: ")",
                                snapshot, R"(" watch_interval: "100ms" }
harvest { disabled: true }
shutdown { grace_ms: 0 }
)")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();

  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, failures{0}, mismatches{0}, regressions{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&, t] {
      auto stub = v1::RecipientValidation::NewStub(server.NewChannel());
      std::string last_version = "v00";
      for (int i = 0; !stop.load(); ++i) {
        const int n = (i * 7919 + t) % kUsers;
        v1::ValidateRequest request;
        request.set_dry_run(true);
        request.add_recipients(absl::StrCat("a", n, "@example.com"));
        request.add_recipients(absl::StrCat("b", n, "@example.com"));
        request.add_recipients(absl::StrCat("common", n, "@example.com"));
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
        v1::ValidateResponse response;
        grpc::Status status = stub->Validate(&ctx, request, &response);
        ++calls;
        if (!status.ok() || response.verdicts_size() != 3) {
          ++failures;
          continue;
        }
        // Even versions hold directory A, odd ones B.
        const std::string& version = response.directory_version();
        const bool is_a = (std::stoi(version.substr(1)) % 2) == 0;
        const bool a_valid =
            response.verdicts(0).status() == v1::RECIPIENT_STATUS_VALID;
        const bool b_valid =
            response.verdicts(1).status() == v1::RECIPIENT_STATUS_VALID;
        const bool common_valid =
            response.verdicts(2).status() == v1::RECIPIENT_STATUS_VALID;
        if (a_valid != is_a || b_valid == is_a || !common_valid) ++mismatches;
        if (version < last_version) ++regressions;
        last_version = version;
      }
    });
  }

  auto admin = v1::Admin::NewStub(server.channel());
  for (int i = 1; i <= 20; ++i) {
    const std::string version = absl::StrFormat("v%02d", i);
    ASSERT_NO_FATAL_FAILURE(WriteSnapshot(snapshot, version, i % 2 == 0));
    if (i % 3 == 1) {
      // Admin.Reload, which answers with the version now served.
      grpc::ClientContext ctx;
      v1::ReloadResponse response;
      grpc::Status status = admin->Reload(&ctx, v1::ReloadRequest(), &response);
      ASSERT_TRUE(status.ok()) << status.error_message();
      EXPECT_EQ(response.directory_version(), version);
    } else if (i % 3 == 2) {
      server.process().Signal(SIGHUP);
    }  // else: the file watcher notices by itself.
    // Wait until the new version is served.
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    for (;;) {
      grpc::ClientContext ctx;
      v1::GetStatusResponse status;
      ASSERT_TRUE(admin->GetStatus(&ctx, v1::GetStatusRequest(), &status).ok());
      if (status.directory_version() == version) break;
      ASSERT_LT(absl::Now(), deadline)
          << "version " << version << " never served\n"
          << server.log();
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  absl::SleepFor(absl::Milliseconds(200));
  stop.store(true);
  for (auto& c : clients) c.join();

  EXPECT_GT(calls.load(), 100);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(regressions.load(), 0);

  grpc::ClientContext ctx;
  v1::GetStatusResponse status;
  ASSERT_TRUE(admin->GetStatus(&ctx, v1::GetStatusRequest(), &status).ok());
  EXPECT_EQ(status.directory_version(), "v20");
  EXPECT_EQ(status.last_reload().refused_total(), 0u);
  EXPECT_EQ(status.last_reload().failed_total(), 0u);
}

TEST(ReloadE2eTest, RefusedSnapshotKeepsServingAndIsReported) {
  const std::string dir = MakeTempDir("rg-reload");
  const std::string snapshot = dir + "/directory.rgs";
  ASSERT_TRUE(WriteFile(dir + "/key", kKeyHex).ok());
  ASSERT_NO_FATAL_FAILURE(WriteSnapshot(snapshot, "v00", true));
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(
      server.Start(absl::StrCat(R"(
listen_address: "127.0.0.1:0"
fingerprint_key_file: ")",
                                dir, R"(/key"
domains { name: "example.com" }
directory { snapshot_file: ")",
                                snapshot, R"(" watch_interval: "0s" }
shutdown { grace_ms: 0 }
)")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();

  // A corrupt candidate: the served directory stays, the refusal is named.
  std::string bytes = testing::ReadFile(snapshot);
  bytes[bytes.size() - 100] ^= 1;
  ASSERT_TRUE(WriteFile(snapshot, bytes).ok());
  auto admin = v1::Admin::NewStub(server.channel());
  grpc::ClientContext ctx;
  v1::ReloadResponse response;
  grpc::Status status = admin->Reload(&ctx, v1::ReloadRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("checksum"));

  grpc::ClientContext ctx2;
  v1::GetStatusResponse st;
  ASSERT_TRUE(admin->GetStatus(&ctx2, v1::GetStatusRequest(), &st).ok());
  EXPECT_EQ(st.directory_version(), "v00");
  EXPECT_EQ(st.last_reload().result(), "failed");
  EXPECT_EQ(st.last_reload().reason(), "checksum");
  EXPECT_EQ(st.last_reload().failed_total(), 1u);

  auto stub = v1::RecipientValidation::NewStub(server.channel());
  v1::ValidateRequest request;
  request.add_recipients("a5@example.com");
  request.set_dry_run(true);
  grpc::ClientContext ctx3;
  v1::ValidateResponse answer;
  ASSERT_TRUE(stub->Validate(&ctx3, request, &answer).ok());
  EXPECT_EQ(answer.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);
  EXPECT_THAT(server.log(), ::testing::HasSubstr("event=reload_failed"));

  // Issue 17: a truncated and an empty file have reasons of their own (not
  // "checksum") in status, the log line and the metrics.
  for (const auto& [cut, reason] :
       {std::pair<size_t, std::string>{bytes.size() / 2, "truncated"},
        std::pair<size_t, std::string>{0, "empty"}}) {
    ASSERT_TRUE(WriteFile(snapshot, bytes.substr(0, cut)).ok());
    grpc::ClientContext reload;
    EXPECT_EQ(
        admin->Reload(&reload, v1::ReloadRequest(), &response).error_code(),
        grpc::StatusCode::DATA_LOSS);
    grpc::ClientContext again;
    ASSERT_TRUE(admin->GetStatus(&again, v1::GetStatusRequest(), &st).ok());
    EXPECT_EQ(st.directory_version(), "v00");
    EXPECT_EQ(st.last_reload().reason(), reason);
    EXPECT_THAT(server.log(),
                ::testing::HasSubstr("event=reload_failed trigger=admin "
                                     "reason=" +
                                     reason));
  }
  const std::string metrics =
      testing::HttpGet(server.metrics_port(), "/metrics");
  for (const char* reason : {"checksum", "truncated", "empty"}) {
    EXPECT_THAT(metrics, ::testing::HasSubstr(absl::StrCat(
                             "rcptguard_directory_reloads_total{reason=\"",
                             reason, "\",result=\"failed\"} 1")));
  }
}

}  // namespace
}  // namespace rcptguard
