// Prints the Prometheus exposition of a ServerMetrics with every metric
// present (a loaded directory, a harvest sampler, some traffic). The deploy
// test checks that every metric name the alert rules and the Grafana
// dashboard use is in it.
//
// Usage: rg_metrics_dump > exposition.txt
#include <cstdio>

#include "absl/time/time.h"
#include "server/metrics/metrics.h"

int main() {
  using namespace rcptguard::metrics;
  MetricsOptions options;
  options.domains = {"example.com", "example.org"};
  options.rule_names = {"burst"};
  options.version = "dump";
  auto metrics = ServerMetrics::Create(std::move(options));
  if (!metrics.ok()) {
    std::fprintf(stderr, "%s\n", metrics.status().ToString().c_str());
    return 1;
  }
  ServerMetrics& m = **metrics;
  m.RecordRequest(Method::kValidate, absl::StatusCode::kOk,
                  absl::Microseconds(120));
  m.RecordRecipientsPerRequest(2);
  m.RecordRecipient(RecipientStatus::kUnknown, 0);
  m.RecordMonitorWouldReject(1);
  m.RecordClientVerdict(ClientAction::kTarpit, "burst");
  m.RecordEdgeRequest("mx1");
  m.RecordReload(ReloadKind::kSuccess, "", absl::Milliseconds(40));
  const absl::Time now = absl::Now();
  m.SetDirectory({.version = "dump-1",
                  .addresses = 300,
                  .domains = 2,
                  .built_at = now - absl::Minutes(5),
                  .loaded_at = now,
                  .alias_domain_addresses = 7});
  m.SetHarvestSampler([] {
    HarvestSample sample{.tracked_keys = 1};
    // As with harvest.shared configured: every rcptguard_harvest_shared_*.
    HarvestSample::Shared& shared = sample.shared.emplace();
    shared.connected = true;
    shared.flush_buckets = {{0.01, 1}, {0.1, 2}};
    shared.flush_count = 2;
    return sample;
  });
  const std::string text = SerializeText(m.collectables());
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
