// Fault test: the snapshot export is killed (SIGKILL) while it writes the
// snapshot the server watches. The served directory must never change, the
// snapshot file must stay the previous one byte for byte, and the next good
// export must be taken up.
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/admin.grpc.pb.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/ad_entries.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::BinaryDir;
using ::rcptguard::testing::BulkAdLdif;
using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::Subprocess;
using ::rcptguard::testing::WriteFile;

bool HasTempFile(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (dirent* e = ::readdir(d)) {
    if (absl::StrContains(e->d_name, ".tmp.")) found = true;
  }
  ::closedir(d);
  return found;
}

std::string ServedVersion(ServerProcess& server) {
  auto admin = v1::Admin::NewStub(server.channel());
  grpc::ClientContext ctx;
  v1::GetStatusResponse status;
  if (!admin->GetStatus(&ctx, v1::GetStatusRequest(), &status).ok()) {
    return "unreachable";
  }
  return status.directory_version();
}

TEST(ExportFaultE2eTest, SigkillDuringExportKeepsTheServedSnapshot) {
  const testing::ScopedTempDir scoped("rg-export-fault");
  const std::string& dir = scoped.path();
  const std::string cli = BinaryDir() + "/clients/rcptguard";
  const std::string key = dir + "/key";
  const std::string out = dir + "/snapshots/directory.rgs";
  ASSERT_EQ(::mkdir((dir + "/snapshots").c_str(), 0755), 0);
  std::string output;
  auto rc =
      testing::RunCommand({cli, "snapshot", "keygen", "--out", key}, &output);
  ASSERT_TRUE(rc.ok() && WEXITSTATUS(*rc) == 0) << output;

  ASSERT_TRUE(WriteFile(dir + "/small.ldif", BulkAdLdif(1000, "old")).ok());
  ASSERT_TRUE(WriteFile(dir + "/big.ldif", BulkAdLdif(600000, "new")).ok());
  const std::vector<std::string> build_small = {cli,
                                                "snapshot",
                                                "build",
                                                "--from_ldif",
                                                dir + "/small.ldif",
                                                "--preset",
                                                "ad",
                                                "--domains",
                                                "example.com",
                                                "--key",
                                                key,
                                                "--out",
                                                out,
                                                "--snapshot_version",
                                                "v-old"};
  rc = testing::RunCommand(build_small, &output);
  ASSERT_TRUE(rc.ok() && WEXITSTATUS(*rc) == 0) << output;
  const std::string original = ReadFile(out);

  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(
      server.Start(absl::StrCat(R"(
listen_address: "127.0.0.1:0"
fingerprint_key_file: ")",
                                key, R"("
domains { name: "example.com" }
directory { snapshot_file: ")",
                                out, R"(" watch_interval: "50ms" }
shutdown { grace_ms: 0 }
)")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  ASSERT_EQ(ServedVersion(server), "v-old");

  // Kill the export as soon as its temporary file appears (i.e. while it
  // writes the snapshot); a few attempts, in case one finishes first.
  int killed_mid_write = 0;
  for (int attempt = 0; attempt < 3 && killed_mid_write == 0; ++attempt) {
    Subprocess build;
    ASSERT_TRUE(
        build
            .Start({cli, "snapshot", "build", "--from_ldif", dir + "/big.ldif",
                    "--preset", "ad", "--domains", "example.com", "--key", key,
                    "--out", out, "--snapshot_version", "v-new"},
                   dir + "/build.log", dir + "/build.log")
            .ok());
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (build.running() && absl::Now() < deadline) {
      if (HasTempFile(dir + "/snapshots")) {
        build.Signal(SIGKILL);
        ++killed_mid_write;
        break;
      }
    }
    std::optional<int> status = build.Wait(absl::Seconds(30));
    ASSERT_TRUE(status.has_value());
    if (killed_mid_write == 0) {
      // It finished before we saw the temp file: put the old one back.
      ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
          << ReadFile(dir + "/build.log");
      rc = testing::RunCommand(build_small, &output);
      ASSERT_TRUE(rc.ok() && WEXITSTATUS(*rc) == 0);
      const absl::Time until = absl::Now() + absl::Seconds(10);
      while (ServedVersion(server) != "v-old" && absl::Now() < until) {
        absl::SleepFor(absl::Milliseconds(20));
      }
    } else {
      EXPECT_TRUE(WIFSIGNALED(*status));
    }
  }
  ASSERT_GT(killed_mid_write, 0) << "never caught the export mid-write";

  // Give the watcher time to look: nothing may change.
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(ReadFile(out), original) << "the served file was touched";
  EXPECT_EQ(ServedVersion(server), "v-old");
  auto stub = v1::RecipientValidation::NewStub(server.channel());
  v1::ValidateRequest request;
  request.set_dry_run(true);
  request.add_recipients("old7@example.com");
  grpc::ClientContext ctx;
  v1::ValidateResponse response;
  ASSERT_TRUE(stub->Validate(&ctx, request, &response).ok());
  EXPECT_EQ(response.verdicts(0).status(), v1::RECIPIENT_STATUS_VALID);

  // The next complete export is taken up. (It replaces 1 000 users by
  // 600 000 others: the shrink guard does not apply to growth.)
  rc = testing::RunCommand(
      {cli, "snapshot", "build", "--from_ldif", dir + "/big.ldif", "--preset",
       "ad", "--domains", "example.com", "--key", key, "--out", out,
       "--snapshot_version", "v-new"},
      &output, absl::Seconds(180));
  ASSERT_TRUE(rc.ok() && WEXITSTATUS(*rc) == 0) << output;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (ServedVersion(server) != "v-new" && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(ServedVersion(server), "v-new") << server.log();
}

}  // namespace
}  // namespace rcptguard
