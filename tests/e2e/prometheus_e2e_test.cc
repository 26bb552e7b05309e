// End-to-end metrics: a real Prometheus (Debian's package) scrapes a real
// rcptguardd with the shipped scrape config (targets pointed at the test's
// ports, intervals shortened), and the verdict counters and directory
// gauges are checked through Prometheus's HTTP query API.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rcptguard/v1/validation.grpc.pb.h"
#include "tests/e2e/server_process.h"
#include "tests/testutil/http.h"
#include "tests/testutil/slapd.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard {
namespace {

using ::rcptguard::testing::HttpBody;
using ::rcptguard::testing::HttpGet;
using ::rcptguard::testing::MakeTempDir;
using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::ServerProcess;
using ::rcptguard::testing::SourceDir;
using ::rcptguard::testing::Subprocess;
using ::rcptguard::testing::WriteFile;
using ::testing::HasSubstr;

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '_' || c == '.' || c == '-') {
      out += static_cast<char>(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// The value of a single-sample instant query, or "" if none (yet).
std::string Query(int port, const std::string& promql) {
  const std::string body =
      HttpBody(HttpGet(port, "/api/v1/query?query=" + UrlEncode(promql)));
  // {"status":"success","data":{"resultType":"vector","result":[{"metric":
  // {...},"value":[1700000000.123,"3"]}]}}
  const size_t value = body.find("\"value\":[");
  if (value == std::string::npos) return "";
  const size_t quote = body.find('"', body.find(',', value) + 1);
  const size_t end = body.find('"', quote + 1);
  if (quote == std::string::npos || end == std::string::npos) return "";
  return body.substr(quote + 1, end - quote - 1);
}

std::string WaitForValue(int port, const std::string& promql,
                         const std::string& want) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  std::string got;
  while (absl::Now() < deadline) {
    got = Query(port, promql);
    if (got == want) return got;
    absl::SleepFor(absl::Milliseconds(250));
  }
  return got;
}

TEST(PrometheusE2eTest, PrometheusScrapesVerdictsAndDirectoryGauges) {
  if (::access("/usr/bin/prometheus", X_OK) != 0) {
    GTEST_SKIP() << "Debian's prometheus package is not installed";
  }
  ServerProcess server;
  ASSERT_NO_FATAL_FAILURE(server.Start(absl::StrCat(
      R"(
listen_address: "127.0.0.1:0"
domains { name: "example.com" }
domains { name: "example.org" mode: DOMAIN_MODE_MONITOR }
directory { ldif_files: ")",
      SourceDir(),
      R"(/deploy/examples/sample.ldif" preset: "ad" stale_after: "0s" }
shutdown { grace_ms: 0 }
)")));
  ASSERT_TRUE(server.WaitServing(absl::Seconds(30))) << server.log();
  ASSERT_GT(server.metrics_port(), 0);

  // Traffic: 3 valid, 2 unknown, 1 relay attempt, 1 malformed, and one
  // monitor-mode unknown.
  auto stub = v1::RecipientValidation::NewStub(server.channel());
  v1::ValidateRequest request;
  request.mutable_context()->set_client_ip("192.0.2.44");
  request.mutable_context()->set_mail_from("a@remote.example.net");
  request.mutable_context()->set_edge_id("edge-a");
  for (const char* r :
       {"alice@example.com", "bob@example.com", "info@example.com",
        "nobody1@example.com", "nobody2@example.com", "x@elsewhere.net",
        "not an address", "nobody@example.org"}) {
    request.add_recipients(r);
  }
  grpc::ClientContext ctx;
  v1::ValidateResponse response;
  ASSERT_TRUE(stub->Validate(&ctx, request, &response).ok());

  // Prometheus with the shipped config, pointed at our ports.
  const std::string dir = MakeTempDir("rg-prometheus");
  std::string config =
      ReadFile(SourceDir() + "/deploy/prometheus/prometheus.yml");
  ASSERT_FALSE(config.empty());
  config = absl::StrReplaceAll(
      config,
      {{"127.0.0.1:9464", absl::StrCat("127.0.0.1:", server.metrics_port())},
       {"scrape_interval: 15s", "scrape_interval: 1s"},
       {"scrape_timeout: 10s", "scrape_timeout: 1s"},
       {"evaluation_interval: 15s", "evaluation_interval: 1s"},
       {"rules/rcptguard.rules.yml",
        SourceDir() + "/deploy/prometheus/rules/rcptguard.rules.yml"}});
  ASSERT_TRUE(WriteFile(dir + "/prometheus.yml", config).ok());
  absl::StatusOr<int> free_port = testing::PickFreeLoopbackPort();
  ASSERT_TRUE(free_port.ok()) << free_port.status();
  const int port = *free_port;
  Subprocess prometheus;
  ASSERT_TRUE(prometheus
                  .Start({"/usr/bin/prometheus",
                          "--config.file=" + dir + "/prometheus.yml",
                          "--storage.tsdb.path=" + dir + "/data",
                          absl::StrCat("--web.listen-address=127.0.0.1:", port),
                          "--log.level=warn"},
                         dir + "/prometheus.log", dir + "/prometheus.log")
                  .ok());

  EXPECT_EQ(WaitForValue(port, "up{job=\"rcptguard\"}", "1"), "1")
      << ReadFile(dir + "/prometheus.log");
  EXPECT_EQ(WaitForValue(port,
                         "rcptguard_recipients_total{job=\"rcptguard\","
                         "domain=\"example.com\",status=\"valid\"}",
                         "3"),
            "3");
  EXPECT_EQ(Query(port,
                  "rcptguard_recipients_total{domain=\"example.com\","
                  "status=\"unknown\"}"),
            "2");
  EXPECT_EQ(
      Query(port, "sum(rcptguard_recipients_total{status=\"not_served\"})"),
      "1");
  EXPECT_EQ(
      Query(port, "sum(rcptguard_recipients_total{status=\"malformed\"})"),
      "1");
  EXPECT_EQ(Query(port, "sum(rcptguard_monitor_would_reject_total)"), "1");
  EXPECT_EQ(Query(port, "rcptguard_directory_addresses{job=\"rcptguard\"}"),
            "280");
  EXPECT_EQ(Query(port, "count(rcptguard_directory_info)"), "1");
  EXPECT_EQ(
      Query(port, "sum(rcptguard_client_verdicts_total{action=\"accept\"})"),
      "1");
  EXPECT_EQ(
      Query(port, "sum(rcptguard_edge_requests_total{edge_id=\"edge-a\"})"),
      "1");
  prometheus.Stop(absl::Seconds(10));
}

}  // namespace
}  // namespace rcptguard
