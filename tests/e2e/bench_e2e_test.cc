// rcptguard-bench against a real rcptguardd on the sample directory: unary
// and stream runs bounded by a request count, every answer checked (the
// valid list is deploy/examples/sample.expected.json's valid_addresses, the
// unknown ones are generated), the JSON report's counts and percentiles;
// that a wrong expectation is reported as an error; that a remote target is
// refused without --allow_remote.
#include <sys/wait.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::testing {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;

std::string Config() {
  return absl::StrCat(
      R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" subaddress_delimiters: "+" aliases: "mail.example.com" }
domains { name: "example.org" mode: DOMAIN_MODE_MONITOR }
directory { ldif_files: ")",
      SourceDir(),
      R"(/deploy/examples/sample.ldif" preset: "ad" stale_after: "0s" }
shutdown { grace_ms: 0 drain_timeout_ms: 500 }
)");
}

// valid_addresses of sample.expected.json, one per line.
std::string ValidAddressList() {
  Struct expected;
  const std::string json =
      ReadFile(SourceDir() + "/deploy/examples/sample.expected.json");
  EXPECT_TRUE(
      google::protobuf::util::JsonStringToMessage(json, &expected).ok());
  std::string out;
  for (const Value& v :
       expected.fields().at("valid_addresses").list_value().values()) {
    absl::StrAppend(&out, v.string_value(), "\n");
  }
  return out;
}

struct BenchRun {
  int exit_code = -1;
  std::string output;
  Struct report;
};

class BenchE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(server_.Start(Config()));
    ASSERT_TRUE(server_.WaitServing(absl::Seconds(30))) << server_.log();
    list_ = server_.dir() + "/valid.txt";
    const std::string addresses = ValidAddressList();
    ASSERT_GT(addresses.size(), 1000u);
    ASSERT_TRUE(WriteFile(list_, addresses).ok());
  }

  BenchRun Run(std::vector<std::string> args) {
    std::vector<std::string> argv = {
        BinaryDir() + "/clients/bench/rcptguard-bench", "--json",
        "--duration=60s"};
    argv.insert(argv.end(), args.begin(), args.end());
    BenchRun run;
    absl::StatusOr<int> status =
        RunCommand(argv, &run.output, absl::Seconds(120));
    EXPECT_TRUE(status.ok()) << status.status();
    if (!status.ok() || !WIFEXITED(*status)) return run;
    run.exit_code = WEXITSTATUS(*status);
    // The report is the one line that is a JSON object.
    for (absl::string_view line : absl::StrSplit(run.output, '\n')) {
      if (!line.empty() && line.front() == '{') {
        EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(
                        std::string(line), &run.report)
                        .ok())
            << line;
      }
    }
    return run;
  }

  static double Number(const Struct& s, const std::string& key) {
    auto it = s.fields().find(key);
    EXPECT_NE(it, s.fields().end()) << key;
    return it == s.fields().end() ? -1 : it->second.number_value();
  }

  // Zero errors, the exact counts, ordered and plausible percentiles.
  void ExpectCleanRun(const BenchRun& run, double requests, double batch) {
    ASSERT_EQ(run.exit_code, 0) << run.output;
    const Struct& r = run.report;
    EXPECT_EQ(Number(r, "errors_total"), 0) << run.output;
    EXPECT_EQ(Number(r, "requests"), requests) << run.output;
    EXPECT_EQ(Number(r, "recipients"), requests * batch) << run.output;
    EXPECT_GT(Number(r, "recipients_per_second"), 0);
    const Struct& latency = r.fields().at("latency_us").struct_value();
    EXPECT_EQ(Number(latency, "count"), requests);
    const double min = Number(latency, "min"), p50 = Number(latency, "p50"),
                 p90 = Number(latency, "p90"), p99 = Number(latency, "p99"),
                 p999 = Number(latency, "p999"), max = Number(latency, "max");
    EXPECT_GT(min, 0);
    EXPECT_LE(min, p50);
    EXPECT_LE(p50, p90);
    EXPECT_LE(p90, p99);
    EXPECT_LE(p99, p999);
    EXPECT_LE(p999, max);
    // Loopback on a loaded 2-core machine: generous, but not absurd.
    EXPECT_LT(p50, 200000) << run.output;  // 200 ms
    // Every request was dry and accepted.
    const Struct& actions = r.fields().at("client_actions").struct_value();
    EXPECT_EQ(Number(actions, "CLIENT_ACTION_ACCEPT"), requests);
    // The server's CPU was read from /proc.
    EXPECT_GT(Number(r, "server_cpu_seconds"), 0) << run.output;
    EXPECT_GT(Number(r, "server_cpu_seconds_per_million_recipients"), 0);
  }

  ServerProcess server_;
  std::string list_;
};

TEST_F(BenchE2eTest, UnaryRunChecksEveryAnswer) {
  BenchRun run =
      Run({"--mode=unary", "--target=" + server_.target(),
           "--addresses_file=" + list_, "--batch=10", "--concurrency=8",
           "--connections=2", "--unknown_share=0.3", "--requests=3000",
           absl::StrCat("--server_pid=", server_.process().pid())});
  ExpectCleanRun(run, 3000, 10);
  EXPECT_EQ(Number(run.report, "connections"), 2);
}

TEST_F(BenchE2eTest, StreamRunChecksEveryAnswer) {
  BenchRun run =
      Run({"--mode=stream", "--target=" + server_.target(),
           "--addresses_file=" + list_, "--batch=1", "--concurrency=4",
           "--unknown_share=0.5", "--requests=5000", "--client_ips=64",
           absl::StrCat("--server_pid=", server_.process().pid())});
  ExpectCleanRun(run, 5000, 1);
}

TEST_F(BenchE2eTest, PipelinedStreamRunChecksEveryAnswerInOrder) {
  BenchRun run =
      Run({"--mode=stream", "--target=" + server_.target(),
           "--addresses_file=" + list_, "--batch=3", "--concurrency=4",
           "--stream_depth=8", "--unknown_share=0.5", "--requests=4000",
           absl::StrCat("--server_pid=", server_.process().pid())});
  ExpectCleanRun(run, 4000, 3);  // request_id order is checked per answer
  EXPECT_EQ(Number(run.report, "stream_depth"), 8);
}

TEST_F(BenchE2eTest, GrpcFloorRunsEmptyCalls) {
  BenchRun run =
      Run({"--mode=grpc-floor", "--target=" + server_.target(),
           "--addresses_file=" + list_, "--concurrency=4", "--requests=2000",
           absl::StrCat("--server_pid=", server_.process().pid())});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(Number(run.report, "errors_total"), 0) << run.output;
  EXPECT_EQ(Number(run.report, "requests"), 2000) << run.output;
  // One call counts as one recipient: s/M reads per million calls.
  EXPECT_EQ(Number(run.report, "recipients"), 2000) << run.output;
  EXPECT_GT(Number(run.report, "server_cpu_seconds_per_million_recipients"), 0);
}

TEST_F(BenchE2eTest, StreamDepthOutOfRangeIsRefused) {
  for (const char* depth : {"--stream_depth=0", "--stream_depth=1025"}) {
    BenchRun run = Run({"--mode=stream", "--target=" + server_.target(),
                        "--addresses_file=" + list_, depth, "--requests=1"});
    EXPECT_EQ(run.exit_code, 2) << depth;
    EXPECT_NE(run.output.find("--stream_depth: 1..1024"), std::string::npos)
        << run.output;
  }
}

TEST_F(BenchE2eTest, WrongExpectationIsAnError) {
  // nobody@example.com does not exist: listed as valid, it must come back
  // as a mismatch, and the exit status says so.
  const std::string list = server_.dir() + "/wrong.txt";
  ASSERT_TRUE(WriteFile(list, "nobody@example.com\n").ok());
  BenchRun run = Run({"--mode=unary", "--target=" + server_.target(),
                      "--addresses_file=" + list, "--batch=5",
                      "--concurrency=2", "--unknown_share=0", "--requests=20"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_EQ(Number(run.report, "errors_total"), 100) << run.output;
  const Struct& errors = run.report.fields().at("errors").struct_value();
  EXPECT_EQ(Number(errors, "expected_VALID_got_UNKNOWN"), 100) << run.output;
}

TEST_F(BenchE2eTest, RemoteTargetNeedsAllowRemote) {
  BenchRun run = Run({"--mode=unary", "--target=192.0.2.1:50051",
                      "--addresses_file=" + list_, "--requests=1"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.output.find("not on this machine"), std::string::npos)
      << run.output;
  run = Run({"--mode=grpc-floor", "--target=192.0.2.1:50051",
             "--addresses_file=" + list_, "--requests=1"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.output.find("not on this machine"), std::string::npos)
      << run.output;
  run = Run({"--mode=ldap", "--ldap_uri=ldap://192.0.2.1/",
             "--addresses_file=" + list_, "--requests=1"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.output.find("not on this machine"), std::string::npos)
      << run.output;
}

}  // namespace
}  // namespace rcptguard::testing
