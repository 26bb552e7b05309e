#include "server/metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/exposition/http_endpoint.h"
#include "common/exposition/process_collector.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "tests/testutil/http.h"

namespace rcptguard::metrics {
namespace {

using ::rcptguard::exposition::ProcessCollector;
using ::rcptguard::exposition::ProcessStats;
using ::rcptguard::exposition::ReadProcessStats;
using ::rcptguard::testing::HttpGet;
using ::testing::HasSubstr;
using ::testing::Not;

MetricsOptions TestOptions(FakeClock* clock) {
  MetricsOptions options;
  options.domains = {"example.com", "example.org"};
  options.rule_names = {"burst", "slow"};
  options.version = "1.2.3";
  options.process_metrics = false;
  options.clock = clock;
  return options;
}

std::unique_ptr<ServerMetrics> MustCreate(MetricsOptions options) {
  auto metrics = ServerMetrics::Create(std::move(options));
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  return metrics.ok() ? std::move(*metrics) : nullptr;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines =
      absl::StrSplit(text, '\n', absl::SkipEmpty());
  return lines;
}

// Asserts each of `expected` is one whole line of the exposition; every
// missing line is reported on its own.
void ExpectLines(const std::string& exposition,
                 std::initializer_list<std::string_view> expected) {
  const std::vector<std::string> lines = Lines(exposition);
  for (std::string_view line : expected) {
    EXPECT_NE(std::find(lines.begin(), lines.end(), line), lines.end())
        << "missing line: " << line << "\nin:\n"
        << exposition;
  }
}

// Asserts `line` is one whole line of the exposition.
void ExpectLine(const std::string& exposition, std::string_view line) {
  ExpectLines(exposition, {line});
}

// Lines starting with `prefix` (sample lines of one metric).
std::vector<std::string> LinesWithPrefix(const std::string& exposition,
                                         const std::string& prefix) {
  std::vector<std::string> out;
  for (const std::string& line : Lines(exposition)) {
    if (absl::StartsWith(line, prefix)) out.push_back(line);
  }
  return out;
}

TEST(ServerMetricsTest, RecordsEverythingWithExactLabels) {
  FakeClock clock;
  auto metrics = MustCreate(TestOptions(&clock));
  ASSERT_NE(metrics, nullptr);

  metrics->RecordRequest(Method::kValidate, absl::StatusCode::kOk,
                         absl::Microseconds(300));
  metrics->RecordRequest(Method::kValidate, absl::StatusCode::kOk,
                         absl::Microseconds(40));
  metrics->RecordRequest(Method::kReload, absl::StatusCode::kPermissionDenied,
                         absl::Milliseconds(2));
  metrics->RecordRequest(Method::kValidateStream,
                         static_cast<absl::StatusCode>(99), absl::Seconds(9));
  metrics->RecordRecipientsPerRequest(3);
  metrics->RecordRecipientsPerRequest(1500);
  metrics->RecordRecipient(RecipientStatus::kUnknown, 0, 3);
  metrics->RecordRecipient(RecipientStatus::kValid, 1);
  metrics->RecordRecipient(RecipientStatus::kNotServed, -1, 2);
  metrics->RecordRecipient(RecipientStatus::kMalformed, -1);
  metrics->RecordRecipient(RecipientStatus::kValid, 7);  // no such domain
  metrics->RecordMonitorWouldReject(1, 2);
  metrics->RecordClientVerdict(ClientAction::kTarpit, "burst");
  metrics->RecordClientVerdict(ClientAction::kReject, "not-configured");
  metrics->RecordClientVerdict(ClientAction::kAccept, "");
  metrics->RecordClientVerdict(ClientAction::kAccept, "");
  metrics->RecordEdgeRequest("mx1");
  metrics->RecordEdgeRequest("mx1");
  metrics->RecordEdgeRequest("");
  metrics->RecordReload(ReloadKind::kSuccess, "", absl::Milliseconds(30));
  metrics->RecordReload(ReloadKind::kUnchanged, "ignored",
                        absl::Milliseconds(3));
  metrics->RecordReload(ReloadKind::kRefused, "shrunk", absl::Seconds(1));
  metrics->RecordReload(ReloadKind::kRefused, "checksum", absl::Seconds(1));
  metrics->RecordReload(ReloadKind::kFailed, "checksum", absl::Seconds(2));
  metrics->RecordReload(ReloadKind::kFailed, "gremlins", absl::Seconds(2));
  metrics->RecordReload(ReloadKind::kFailed, "truncated", absl::Seconds(2));
  metrics->RecordReload(ReloadKind::kFailed, "empty", absl::Seconds(2));
  metrics->SetDirectory({.version = "snap-7",
                         .addresses = 1000,
                         .domains = 2,
                         .built_at = clock.Now() - absl::Seconds(90),
                         .loaded_at = clock.Now() - absl::Seconds(30),
                         .alias_domain_addresses = 47});
  metrics->SetHarvestSampler([] {
    return HarvestSample{.tracked_keys = 12,
                         .max_tracked_keys = 1000,
                         .evictions = 4,
                         .active_penalty_boxes = 2,
                         .domains_under_attack = 1};
  });

  const std::string text = SerializeText(metrics->collectables());
  ExpectLines(
      text,
      {
          R"(rcptguard_build_info{version="1.2.3"} 1)",
          R"(rcptguard_grpc_requests_total{code="OK",method="Validate"} 2)",
          R"(rcptguard_grpc_requests_total{code="PERMISSION_DENIED",method="Reload"} 1)",
          R"(rcptguard_grpc_requests_total{code="UNKNOWN",method="ValidateStream"} 1)",
          R"(rcptguard_grpc_requests_total{code="OK",method="ListOffenders"} 0)",
          R"(rcptguard_grpc_request_duration_seconds_bucket{method="Validate",le="5e-05"} 1)",
          R"(rcptguard_grpc_request_duration_seconds_bucket{method="Validate",le="0.00025"} 1)",
          R"(rcptguard_grpc_request_duration_seconds_bucket{method="Validate",le="0.0005"} 2)",
          R"(rcptguard_grpc_request_duration_seconds_count{method="Validate"} 2)",
          R"(rcptguard_grpc_request_duration_seconds_bucket{method="ValidateStream",le="5"} 0)",
          R"(rcptguard_grpc_request_duration_seconds_bucket{method="ValidateStream",le="+Inf"} 1)",
          R"(rcptguard_recipients_per_request_bucket{le="5"} 1)",
          R"(rcptguard_recipients_per_request_bucket{le="1000"} 1)",
          R"(rcptguard_recipients_per_request_count 2)",
          R"(rcptguard_recipients_per_request_sum 1503)",
          R"(rcptguard_recipients_total{domain="example.com",status="unknown"} 3)",
          R"(rcptguard_recipients_total{domain="example.org",status="valid"} 1)",
          R"(rcptguard_recipients_total{domain="other",status="not_served"} 2)",
          R"(rcptguard_recipients_total{domain="other",status="malformed"} 1)",
          R"(rcptguard_recipients_total{domain="other",status="valid"} 1)",
          R"(rcptguard_recipients_total{domain="example.com",status="valid"} 0)",
          R"(rcptguard_monitor_would_reject_total{domain="example.org"} 2)",
          R"(rcptguard_monitor_would_reject_total{domain="example.com"} 0)",
          R"(rcptguard_client_verdicts_total{action="tarpit",rule="burst"} 1)",
          R"(rcptguard_client_verdicts_total{action="reject",rule="other"} 1)",
          R"(rcptguard_client_verdicts_total{action="accept",rule="none"} 2)",
          R"(rcptguard_client_verdicts_total{action="reject",rule="slow"} 0)",
          R"(rcptguard_edge_requests_total{edge_id="mx1"} 2)",
          R"(rcptguard_edge_requests_total{edge_id="none"} 1)",
          R"(rcptguard_edge_requests_total{edge_id="other"} 0)",
          R"(rcptguard_directory_reloads_total{reason="none",result="success"} 1)",
          R"(rcptguard_directory_reloads_total{reason="none",result="unchanged"} 1)",
          R"(rcptguard_directory_reloads_total{reason="shrunk",result="refused"} 1)",
          R"(rcptguard_directory_reloads_total{reason="other",result="refused"} 1)",
          R"(rcptguard_directory_reloads_total{reason="checksum",result="failed"} 1)",
          R"(rcptguard_directory_reloads_total{reason="other",result="failed"} 1)",
          R"(rcptguard_directory_reloads_total{reason="truncated",result="failed"} 1)",
          R"(rcptguard_directory_reloads_total{reason="empty",result="failed"} 1)",
          R"(rcptguard_directory_reloads_total{reason="empty",result="refused"} 0)",
      });
  // Combinations that cannot happen have no series.
  EXPECT_THAT(text, Not(HasSubstr(R"(reason="checksum",result="refused")")));
  EXPECT_THAT(text, Not(HasSubstr(R"(reason="none",result="failed")")));
  ExpectLines(
      text,
      {
          "rcptguard_directory_load_duration_seconds_count 8",
          "rcptguard_directory_load_duration_seconds_bucket{le=\"1\"} 4",
          "rcptguard_directory_addresses 1000",
          "rcptguard_directory_domains 2",
          R"(rcptguard_directory_info{version="snap-7"} 1)",
          "rcptguard_directory_last_load_success_timestamp_seconds 1699999970",
          "rcptguard_directory_snapshot_age_seconds 90",
          "rcptguard_directory_alias_domain_addresses 47",
          "rcptguard_harvest_tracked_keys 12",
          "rcptguard_harvest_tracked_keys_limit 1000",
          "rcptguard_harvest_evictions_total 4",
          "rcptguard_harvest_penalty_boxes_active 2",
          "rcptguard_harvest_domains_under_attack 1",
          "# TYPE rcptguard_harvest_evictions_total counter",
          "# TYPE rcptguard_edge_requests_total counter",
          "# TYPE rcptguard_directory_info gauge",
      });
  // Process metrics were turned off.
  EXPECT_THAT(text, Not(HasSubstr("process_")));
}

TEST(ServerMetricsTest, SeriesExistBeforeAnythingIsRecorded) {
  FakeClock clock;
  auto metrics = MustCreate(TestOptions(&clock));
  ASSERT_NE(metrics, nullptr);
  const std::string text = SerializeText(metrics->collectables());
  // 7 methods x 17 codes, 2 served domains + other x 4 statuses, 4 actions x
  // (2 rules + other + none), 2 + 4 + 7 reload series.
  EXPECT_EQ(LinesWithPrefix(text, "rcptguard_grpc_requests_total{").size(),
            7u * 17u);
  EXPECT_EQ(LinesWithPrefix(text, "rcptguard_recipients_total{").size(), 12u);
  EXPECT_EQ(LinesWithPrefix(text, "rcptguard_client_verdicts_total{").size(),
            16u);
  EXPECT_EQ(LinesWithPrefix(text, "rcptguard_directory_reloads_total{").size(),
            13u);
  ExpectLine(text, "rcptguard_directory_addresses 0");
  // Nothing loaded yet: no version, no age, no load time.
  EXPECT_THAT(text, Not(HasSubstr("rcptguard_directory_info")));
  EXPECT_THAT(text, Not(HasSubstr("rcptguard_directory_snapshot_age_seconds")));
  EXPECT_THAT(text, Not(HasSubstr("rcptguard_directory_last_load")));
  // No harvest sampler: harvest detection is off.
  EXPECT_THAT(text, Not(HasSubstr("rcptguard_harvest_")));
}

TEST(ServerMetricsTest, DirectoryInfoVersionIsReplacedOnReload) {
  FakeClock clock;
  auto metrics = MustCreate(TestOptions(&clock));
  ASSERT_NE(metrics, nullptr);
  metrics->SetDirectory({.version = "v1",
                         .addresses = 10,
                         .domains = 1,
                         .built_at = clock.Now(),
                         .loaded_at = clock.Now()});
  ExpectLine(SerializeText(metrics->collectables()),
             R"(rcptguard_directory_info{version="v1"} 1)");
  metrics->SetDirectory({.version = "v2",
                         .addresses = 11,
                         .domains = 1,
                         .built_at = clock.Now(),
                         .loaded_at = clock.Now()});
  const std::string text = SerializeText(metrics->collectables());
  ExpectLine(text, R"(rcptguard_directory_info{version="v2"} 1)");
  EXPECT_THAT(text, Not(HasSubstr(R"(version="v1")")));
  EXPECT_EQ(LinesWithPrefix(text, "rcptguard_directory_info{").size(), 1u);
  ExpectLine(text, "rcptguard_directory_addresses 11");
}

TEST(ServerMetricsTest, SnapshotAgeIsComputedAtScrapeTime) {
  FakeClock clock;
  auto metrics = MustCreate(TestOptions(&clock));
  ASSERT_NE(metrics, nullptr);
  metrics->SetDirectory({.version = "v1",
                         .addresses = 1,
                         .domains = 1,
                         .built_at = clock.Now() - absl::Minutes(1),
                         .loaded_at = clock.Now()});
  ExpectLine(SerializeText(metrics->collectables()),
             "rcptguard_directory_snapshot_age_seconds 60");
  clock.Advance(absl::Hours(1));
  ExpectLine(SerializeText(metrics->collectables()),
             "rcptguard_directory_snapshot_age_seconds 3660");
  // A built_at in the future (clock skew) reads as age 0, not negative.
  metrics->SetDirectory({.version = "v2",
                         .addresses = 1,
                         .domains = 1,
                         .built_at = clock.Now() + absl::Minutes(5),
                         .loaded_at = clock.Now()});
  ExpectLine(SerializeText(metrics->collectables()),
             "rcptguard_directory_snapshot_age_seconds 0");
}

TEST(ServerMetricsTest, HarvestSamplerCanBeCleared) {
  FakeClock clock;
  auto metrics = MustCreate(TestOptions(&clock));
  ASSERT_NE(metrics, nullptr);
  int calls = 0;
  metrics->SetHarvestSampler([&calls] {
    ++calls;
    return HarvestSample{.tracked_keys = static_cast<uint64_t>(calls)};
  });
  ExpectLine(SerializeText(metrics->collectables()),
             "rcptguard_harvest_tracked_keys 1");
  ExpectLine(SerializeText(metrics->collectables()),
             "rcptguard_harvest_tracked_keys 2");
  metrics->SetHarvestSampler(nullptr);
  EXPECT_THAT(SerializeText(metrics->collectables()),
              Not(HasSubstr("rcptguard_harvest_")));
  EXPECT_EQ(calls, 2);
}

TEST(ServerMetricsTest, SharedHarvestMetricsOnlyWhenConfigured) {
  FakeClock clock;
  auto metrics = MustCreate(TestOptions(&clock));
  ASSERT_NE(metrics, nullptr);
  metrics->SetHarvestSampler([] { return HarvestSample{.tracked_keys = 1}; });
  EXPECT_THAT(SerializeText(metrics->collectables()),
              Not(HasSubstr("rcptguard_harvest_shared_")));
  metrics->SetHarvestSampler([] {
    HarvestSample s;
    HarvestSample::Shared& sh = s.shared.emplace();
    sh.connected = false;
    sh.lag_seconds = 12.5;
    sh.errors = 3;
    sh.dropped_deltas = 7;
    sh.queued_deltas = 5;
    sh.reconnects = 2;
    sh.flushes = 40;
    sh.flush_buckets = {{0.01, 30}, {0.1, 39}};
    sh.flush_seconds_sum = 0.5;
    sh.flush_count = 40;
    return s;
  });
  ExpectLines(
      SerializeText(metrics->collectables()),
      {
          "rcptguard_harvest_shared_connected 0",
          "rcptguard_harvest_shared_lag_seconds 12.5",
          "rcptguard_harvest_shared_errors_total 3",
          "rcptguard_harvest_shared_dropped_deltas_total 7",
          "rcptguard_harvest_shared_queued_deltas 5",
          "rcptguard_harvest_shared_reconnects_total 2",
          "rcptguard_harvest_shared_flushes_total 40",
          "rcptguard_harvest_shared_flush_duration_seconds_bucket{le=\"0.01\"} "
          "30",
          "rcptguard_harvest_shared_flush_duration_seconds_bucket{le=\"+Inf\"} "
          "40",
          "rcptguard_harvest_shared_flush_duration_seconds_count 40",
          "# TYPE rcptguard_harvest_shared_flush_duration_seconds histogram",
      });
}

TEST(ServerMetricsTest, DomainsBeyondTheLabelCapFoldIntoOther) {
  FakeClock clock;
  MetricsOptions options = TestOptions(&clock);
  options.domains = {"a.example", "b.example", "c.example"};
  options.max_domain_labels = 2;
  auto metrics = MustCreate(std::move(options));
  ASSERT_NE(metrics, nullptr);
  metrics->RecordRecipient(RecipientStatus::kUnknown, 0);
  metrics->RecordRecipient(RecipientStatus::kUnknown, 1);
  metrics->RecordRecipient(RecipientStatus::kUnknown, 2);   // beyond the cap
  metrics->RecordRecipient(RecipientStatus::kUnknown, -1);  // not served
  metrics->RecordMonitorWouldReject(2);
  const std::string text = SerializeText(metrics->collectables());
  ExpectLines(
      text,
      {
          R"(rcptguard_recipients_total{domain="a.example",status="unknown"} 1)",
          R"(rcptguard_recipients_total{domain="b.example",status="unknown"} 1)",
          R"(rcptguard_recipients_total{domain="other",status="unknown"} 2)",
          R"(rcptguard_monitor_would_reject_total{domain="other"} 1)",
      });
  EXPECT_THAT(text, Not(HasSubstr("c.example")));
}

TEST(ServerMetricsTest, EdgeIdsAreCappedFirstComeFirstServed) {
  FakeClock clock;
  MetricsOptions options = TestOptions(&clock);
  options.max_edge_ids = 3;
  auto metrics = MustCreate(std::move(options));
  ASSERT_NE(metrics, nullptr);
  for (const char* id : {"mx1", "mx2", "mx1", "mx3", "mx4", "mx5", "mx2"}) {
    metrics->RecordEdgeRequest(id);
  }
  metrics->RecordEdgeRequest(std::string(65, 'x'));  // too long
  metrics->RecordEdgeRequest("caf\xc3\xa9");         // not ASCII
  metrics->RecordEdgeRequest("line\nbreak");         // control character
  const std::string text = SerializeText(metrics->collectables());
  ExpectLines(text, {
                        R"(rcptguard_edge_requests_total{edge_id="mx1"} 2)",
                        R"(rcptguard_edge_requests_total{edge_id="mx2"} 2)",
                        R"(rcptguard_edge_requests_total{edge_id="mx3"} 1)",
                        R"(rcptguard_edge_requests_total{edge_id="other"} 5)",
                    });
  EXPECT_EQ(LinesWithPrefix(text, "rcptguard_edge_requests_total{").size(),
            5u);  // 3 edges, other, none
}

TEST(ServerMetricsTest, EdgeIdsAreEscapedNotDropped) {
  FakeClock clock;
  MetricsOptions options = TestOptions(&clock);
  options.max_edge_ids = 1;
  auto metrics = MustCreate(std::move(options));
  ASSERT_NE(metrics, nullptr);
  metrics->RecordEdgeRequest("bad\x01");
  metrics->RecordEdgeRequest("good \"quoted\" \\ edge");
  const std::string text = SerializeText(metrics->collectables());
  // A control character is percent-encoded; the id keeps its slot.
  ExpectLines(text, {
                        R"(rcptguard_edge_requests_total{edge_id="bad%01"} 1)",
                        R"(rcptguard_edge_requests_total{edge_id="other"} 1)",
                    });
}

// Regression (issue 19): an edge named "other" or "none" shared its series
// with the overflow or missing-id one, and Prometheus dropped one of them.
TEST(ServerMetricsTest, EdgeIdsCannotClaimReservedLabels) {
  FakeClock clock;
  MetricsOptions options = TestOptions(&clock);
  options.max_edge_ids = 4;
  auto metrics = MustCreate(std::move(options));
  ASSERT_NE(metrics, nullptr);
  for (int i = 0; i < 2; ++i) metrics->RecordEdgeRequest("other");
  for (int i = 0; i < 3; ++i) metrics->RecordEdgeRequest("none");
  metrics->RecordEdgeRequest("%6Fther");  // the escaped form, as an identity
  metrics->RecordEdgeRequest("");         // missing
  metrics->RecordEdgeRequest("mx1");      // takes the last slot
  for (int i = 0; i < 4; ++i) metrics->RecordEdgeRequest("mx2");  // overflow
  const std::string text = SerializeText(metrics->collectables());
  EXPECT_THAT(LinesWithPrefix(text, "rcptguard_edge_requests_total{"),
              ::testing::UnorderedElementsAre(
                  R"(rcptguard_edge_requests_total{edge_id="%6Fther"} 2)",
                  R"(rcptguard_edge_requests_total{edge_id="%6Eone"} 3)",
                  R"(rcptguard_edge_requests_total{edge_id="%256Fther"} 1)",
                  R"(rcptguard_edge_requests_total{edge_id="mx1"} 1)",
                  R"(rcptguard_edge_requests_total{edge_id="other"} 4)",
                  R"(rcptguard_edge_requests_total{edge_id="none"} 1)"));
}

TEST(ServerMetricsTest, LongEdgeIdsAreClippedAndStayDistinct) {
  FakeClock clock;
  auto metrics = MustCreate(TestOptions(&clock));
  ASSERT_NE(metrics, nullptr);
  metrics->RecordEdgeRequest(std::string(300, 'a'));
  metrics->RecordEdgeRequest(std::string(300, 'a'));
  metrics->RecordEdgeRequest(std::string(299, 'a') + "b");
  // The clip does not split the %FF escape that straddles byte 64.
  metrics->RecordEdgeRequest(std::string(62, 'a') + "\xff" +
                             std::string(300, 'b'));
  metrics->RecordEdgeRequest(std::string(64, 'c'));  // exactly 64: whole
  const std::string text = SerializeText(metrics->collectables());
  const std::string a64(64, 'a');
  const std::string prefix = R"(rcptguard_edge_requests_total{edge_id=")";
  ExpectLines(text, {
                        absl::StrCat(prefix, a64, R"(~EE7717EBA7A17E21"} 2)"),
                        absl::StrCat(prefix, a64, R"(~EE7714EBA7A17908"} 1)"),
                        absl::StrCat(prefix, std::string(62, 'a'),
                                     R"(~108A33D30B736D3C"} 1)"),
                        absl::StrCat(prefix, std::string(64, 'c'), R"("} 1)"),
                    });
}

TEST(ServerMetricsTest, NonAsciiEdgeIdsArePercentEncoded) {
  FakeClock clock;
  auto metrics = MustCreate(TestOptions(&clock));
  ASSERT_NE(metrics, nullptr);
  metrics->RecordEdgeRequest(
      "mx\xff"
      "1");                                   // invalid UTF-8
  metrics->RecordEdgeRequest("caf\xc3\xa9");  // valid UTF-8, not ASCII
  metrics->RecordEdgeRequest("line\nbreak");  // control character
  metrics->RecordEdgeRequest("50%");          // the escape character
  metrics->RecordEdgeRequest("good \"quoted\" \\ edge");
  const std::string text = SerializeText(metrics->collectables());
  ExpectLines(text,
              {
                  R"(rcptguard_edge_requests_total{edge_id="mx%FF1"} 1)",
                  R"(rcptguard_edge_requests_total{edge_id="caf%C3%A9"} 1)",
                  R"(rcptguard_edge_requests_total{edge_id="line%0Abreak"} 1)",
                  R"(rcptguard_edge_requests_total{edge_id="50%25"} 1)",
              });
  // Printable ASCII is kept, escaped as the text format wants.
  ExpectLine(
      text,
      R"(rcptguard_edge_requests_total{edge_id="good \"quoted\" \\ edge"} 1)");
  for (char c : text) EXPECT_LT(static_cast<unsigned char>(c), 0x80);
}

TEST(ServerMetricsTest, ConcurrentRecordingLosesNothing) {
  FakeClock clock;
  MetricsOptions options = TestOptions(&clock);
  options.max_edge_ids = 16;
  auto metrics = MustCreate(std::move(options));
  ASSERT_NE(metrics, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&metrics, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // 40 distinct ids race for 16 slots.
        metrics->RecordEdgeRequest(absl::StrCat("edge-", (i * 7 + t) % 40));
        metrics->RecordRecipient(RecipientStatus::kValid, i % 3 - 1);
        metrics->RecordRequest(Method::kValidate, absl::StatusCode::kOk,
                               absl::Microseconds(i % 1000));
      }
    });
  }
  // Scrapes and reloads race with the recording threads.
  std::atomic<bool> done{false};
  std::thread scraper([&metrics, &done] {
    int scrapes = 0;
    while (!done.load() || scrapes == 0) {
      metrics->SetDirectory({.version = absl::StrCat("v", scrapes)});
      metrics->SetHarvestSampler([] { return HarvestSample{}; });
      EXPECT_THAT(SerializeText(metrics->collectables()),
                  HasSubstr("rcptguard_edge_requests_total"));
      ++scrapes;
    }
  });
  for (auto& thread : threads) thread.join();
  done.store(true);
  scraper.join();
  const std::string text = SerializeText(metrics->collectables());
  double edge_total = 0;
  std::vector<std::string> edges =
      LinesWithPrefix(text, "rcptguard_edge_requests_total{");
  for (const std::string& line : edges) {
    edge_total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  EXPECT_EQ(edge_total, kThreads * kPerThread);
  EXPECT_EQ(edges.size(), 16u + 2u);
  ExpectLines(
      text,
      {
          absl::StrCat(
              R"(rcptguard_grpc_requests_total{code="OK",method="Validate"} )",
              kThreads * kPerThread),
          absl::StrCat(
              R"(rcptguard_grpc_request_duration_seconds_count{method="Validate"} )",
              kThreads * kPerThread),
      });
}

TEST(ServerMetricsTest, RefusesANameTakenByAnotherType) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge()
      .Name("rcptguard_recipients_total")
      .Help("squatter")
      .Register(*registry);
  auto metrics = ServerMetrics::Create(MetricsOptions{}, registry);
  ASSERT_FALSE(metrics.ok());
  EXPECT_EQ(metrics.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(metrics.status().message()),
              HasSubstr("cannot register metrics"));
}

TEST(ServerMetricsTest, MethodNames) {
  EXPECT_EQ(MethodName(Method::kValidate), "Validate");
  EXPECT_EQ(MethodName(Method::kValidateStream), "ValidateStream");
  EXPECT_EQ(MethodName(Method::kGetStatus), "GetStatus");
  EXPECT_EQ(MethodName(Method::kListOffenders), "ListOffenders");
  EXPECT_EQ(MethodName(Method::kForgetClient), "ForgetClient");
  EXPECT_EQ(MethodName(Method::kReload), "Reload");
}

// ---- Process collector ----

TEST(ProcessCollectorTest, ReadsThisProcessSanely) {
  const ProcessStats stats = ReadProcessStats("/proc");
  ASSERT_TRUE(stats.cpu_seconds.has_value());
  ASSERT_TRUE(stats.resident_memory_bytes.has_value());
  ASSERT_TRUE(stats.virtual_memory_bytes.has_value());
  ASSERT_TRUE(stats.start_time_seconds.has_value());
  ASSERT_TRUE(stats.open_fds.has_value());
  ASSERT_TRUE(stats.max_fds.has_value());
  EXPECT_GE(*stats.cpu_seconds, 0);
  EXPECT_LT(*stats.cpu_seconds, 3600);
  EXPECT_GT(*stats.resident_memory_bytes, 256 * 1024);
  EXPECT_GE(*stats.virtual_memory_bytes, *stats.resident_memory_bytes);
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  EXPECT_LE(*stats.start_time_seconds, now + 1);
  EXPECT_GT(*stats.start_time_seconds, now - 3600);
  EXPECT_GE(*stats.open_fds, 3);  // stdin, stdout, stderr
  EXPECT_LE(*stats.open_fds, *stats.max_fds);

  // Burn some CPU and open a file: both show.
  const double fds_before = *stats.open_fds;
  FILE* f = std::fopen("/proc/self/stat", "r");
  ASSERT_NE(f, nullptr);
  volatile double x = 0;
  for (int i = 0; i < 50'000'000; ++i) x = x + i * 0.5;
  const ProcessStats after = ReadProcessStats("/proc");
  std::fclose(f);
  EXPECT_EQ(*after.open_fds, fds_before + 1);
  EXPECT_GT(*after.cpu_seconds, *stats.cpu_seconds);
}

class FakeProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rg_fake_proc_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    mkdir((root_ + "/self").c_str(), 0755);
    mkdir((root_ + "/self/fd").c_str(), 0755);
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + root_ + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  void Write(const std::string& path, const std::string& content) {
    std::ofstream out(root_ + "/" + path);
    out << content;
  }
  std::string root_;
};

TEST_F(FakeProcTest, ParsesProcFiles) {
  // comm holds spaces and a ')': fields are counted after the last ')'.
  // utime 250 + stime 150 ticks; starttime 1000 ticks; vsize; rss pages.
  Write("self/stat",
        "4242 (rcpt guard) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 "
        "0 20 0 8 0 1000 123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 "
        "0 0 0 0 17 1 0 0 0 0 0\n");
  Write("stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n");
  Write("self/limits",
        "Limit                     Soft Limit           Hard Limit           "
        "Units     \n"
        "Max open files            4096                 524288               "
        "files     \n");
  for (const char* fd : {"0", "1", "2", "7"})
    Write(std::string("self/fd/") + fd, "");
  const ProcessStats stats = ReadProcessStats(root_, /*ticks=*/100,
                                              /*page_size=*/4096);
  EXPECT_EQ(stats.cpu_seconds, 4.0);
  EXPECT_EQ(stats.virtual_memory_bytes, 123456789.0);
  EXPECT_EQ(stats.resident_memory_bytes, 300.0 * 4096);
  EXPECT_EQ(stats.start_time_seconds, 1700000010.0);
  EXPECT_EQ(stats.open_fds, 4.0);
  EXPECT_EQ(stats.max_fds, 4096.0);
}

TEST_F(FakeProcTest, LeavesOutWhatCannotBeRead) {
  Write("self/stat", "garbage without parenthesis");
  Write("self/limits", "Max open files            unlimited     unlimited\n");
  const ProcessStats stats = ReadProcessStats(root_, 100, 4096);
  EXPECT_FALSE(stats.cpu_seconds.has_value());
  EXPECT_FALSE(stats.start_time_seconds.has_value());
  EXPECT_FALSE(stats.max_fds.has_value());
  EXPECT_EQ(stats.open_fds, 0.0);

  ProcessCollector collector(root_ + "/nonexistent");
  EXPECT_TRUE(collector.Collect().empty());
}

TEST(ProcessCollectorTest, ExportsStandardNames) {
  const std::string text =
      SerializeText({std::make_shared<ProcessCollector>()});
  for (const char* name :
       {"process_cpu_seconds_total", "process_resident_memory_bytes",
        "process_virtual_memory_bytes", "process_start_time_seconds",
        "process_open_fds", "process_max_fds"}) {
    EXPECT_EQ(LinesWithPrefix(text, absl::StrCat(name, " ")).size(), 1u)
        << name << " in\n"
        << text;
  }
  ExpectLine(text, "# TYPE process_cpu_seconds_total counter");
}

// ---- Exposition checked by promtool ----

// Runs a shell command; returns its exit status and fills `output`.
int RunShell(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
    output->append(buffer, n);
  }
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ExpositionTest, PromtoolCheckMetricsHasNoWarnings) {
  std::string ignored;
  if (RunShell("command -v promtool", &ignored) != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package: prometheus)";
  }
  FakeClock clock;
  MetricsOptions options = TestOptions(&clock);
  options.process_metrics = true;
  auto metrics = MustCreate(std::move(options));
  ASSERT_NE(metrics, nullptr);
  metrics->RecordRequest(Method::kValidate, absl::StatusCode::kOk,
                         absl::Microseconds(100));
  metrics->RecordEdgeRequest("mx1");
  // Hostile identities: the exposition must still parse, series unique.
  for (const std::string& id : {std::string("other"), std::string("none"),
                                std::string("mx\xff"), std::string(300, 'a')}) {
    metrics->RecordEdgeRequest(id);
  }
  metrics->SetDirectory({.version = "v1",
                         .addresses = 1,
                         .domains = 1,
                         .built_at = clock.Now(),
                         .loaded_at = clock.Now()});
  metrics->SetHarvestSampler([] { return HarvestSample{}; });
  const std::string text = SerializeText(metrics->collectables());

  char path[] = "/tmp/rg_exposition_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, text.data(), text.size()),
            static_cast<ssize_t>(text.size()));
  close(fd);
  std::string output;
  const int rc =
      RunShell(absl::StrCat("promtool check metrics < ", path), &output);
  unlink(path);
  EXPECT_EQ(rc, 0) << output;
  EXPECT_EQ(output, "") << "promtool warnings:\n" << output;
}

// ---- HTTP endpoint ----

TEST(HttpEndpointTest, ServesMetricsOnAPickedPort) {
  FakeClock clock;
  MetricsOptions options = TestOptions(&clock);
  options.process_metrics = true;
  auto metrics = MustCreate(std::move(options));
  ASSERT_NE(metrics, nullptr);
  metrics->RecordRecipient(RecipientStatus::kUnknown, 0, 3);
  auto server =
      exposition::StartHttpEndpoint("127.0.0.1:0", metrics->collectables());
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  ASSERT_GT(port, 0);
  const std::string response = HttpGet(port, "/metrics");
  EXPECT_THAT(response, HasSubstr("200 OK"));
  EXPECT_THAT(response,
              HasSubstr(R"(rcptguard_build_info{version="1.2.3"} 1)"));
  EXPECT_THAT(
      response,
      HasSubstr(
          R"(rcptguard_recipients_total{domain="example.com",status="unknown"} 3)"));
  EXPECT_THAT(response, HasSubstr("rcptguard_edge_requests_total"));
  EXPECT_THAT(response, HasSubstr("process_open_fds"));

  // The server keeps the collectables alive on its own.
  metrics.reset();
  EXPECT_THAT(HttpGet(port, "/metrics"), HasSubstr("rcptguard_build_info"));
  server->reset();
  EXPECT_EQ(HttpGet(port, "/metrics"), "");
}

// Opens a TCP connection to 127.0.0.1:port; -1 when it cannot.
int ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Regression (issue 19): two idle connections used to hold both of the
// exposer's worker threads for the whole civetweb request timeout, so a
// scrape waited behind them (or timed out). Idle, stalled and trickling
// clients now cost a worker for at most the short request timeout.
TEST(HttpEndpointTest, IdleAndSlowClientsDoNotBlockAScrape) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("rcptguard_test_total")
      .Help("test")
      .Register(*registry)
      .Add({})
      .Increment(7);
  auto server = exposition::StartHttpEndpoint("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();

  std::vector<int> idle;     // connect and say nothing
  std::vector<int> stalled;  // one byte of a request, then nothing
  for (int i = 0; i < 10; ++i) idle.push_back(ConnectLoopback(port));
  for (int i = 0; i < 5; ++i) {
    const int fd = ConnectLoopback(port);
    if (fd >= 0) send(fd, "G", 1, MSG_NOSIGNAL);
    stalled.push_back(fd);
  }
  for (int fd : idle) EXPECT_GE(fd, 0);
  for (int fd : stalled) EXPECT_GE(fd, 0);
  // Three more send a request one byte every 200 ms for the whole test.
  std::atomic<bool> stop{false};
  std::thread trickle([port, &stop] {
    std::vector<int> fds;
    for (int i = 0; i < 3; ++i) fds.push_back(ConnectLoopback(port));
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    for (size_t i = 0; !stop.load() && i < 50; ++i) {
      for (int fd : fds) {
        if (fd >= 0) send(fd, &request[i % request.size()], 1, MSG_NOSIGNAL);
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  });
  // Let the server hand the early connections to its workers first.
  absl::SleepFor(absl::Milliseconds(200));

  for (int scrape = 0; scrape < 2; ++scrape) {
    const absl::Time start = absl::Now();
    const std::string response = HttpGet(port, "/metrics");
    const absl::Duration took = absl::Now() - start;
    EXPECT_THAT(response, HasSubstr("rcptguard_test_total 7"));
    EXPECT_LT(took, absl::Seconds(3)) << "scrape " << scrape;
    std::printf("scrape %d with 18 idle or slow clients: %lld ms\n", scrape,
                static_cast<long long>(absl::ToInt64Milliseconds(took)));
  }
  stop.store(true);
  trickle.join();
  for (int fd : idle) {
    if (fd >= 0) close(fd);
  }
  for (int fd : stalled) {
    if (fd >= 0) close(fd);
  }
}

TEST(HttpEndpointTest, RegistryOverload) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("rcptguard_postfix_queries_total")
      .Help("test")
      .Register(*registry)
      .Add({})
      .Increment(5);
  auto server = exposition::StartHttpEndpoint("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT(HttpGet((*server)->port(), "/metrics"),
              HasSubstr("rcptguard_postfix_queries_total 5"));
}

TEST(HttpEndpointTest, ColonPortListensOnEveryInterface) {
  auto server = exposition::StartHttpEndpoint(
      ":0", std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  EXPECT_THAT(HttpGet((*server)->port(), "/metrics"), HasSubstr("200 OK"));
}

TEST(HttpEndpointTest, BadAddresses) {
  auto no_port = exposition::StartHttpEndpoint(
      "127.0.0.1", std::shared_ptr<prometheus::Registry>());
  ASSERT_FALSE(no_port.ok());
  EXPECT_EQ(no_port.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_port.status().message()),
              HasSubstr("has no port"));

  auto bad_port = exposition::StartHttpEndpoint(
      "127.0.0.1:http", std::make_shared<prometheus::Registry>());
  ASSERT_FALSE(bad_port.ok());
  EXPECT_EQ(bad_port.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_port.status().message()), HasSubstr("bad port"));

  auto first = exposition::StartHttpEndpoint(
      "127.0.0.1:0", std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string taken = absl::StrCat("127.0.0.1:", (*first)->port());
  auto second = exposition::StartHttpEndpoint(
      taken, std::make_shared<prometheus::Registry>());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("cannot serve metrics on " + taken));
}

}  // namespace
}  // namespace rcptguard::metrics
