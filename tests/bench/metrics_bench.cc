// Cost of ServerMetrics' record path (what every Validate call pays) and
// of one scrape. Build with -DCMAKE_BUILD_TYPE=Release.
//
//   metrics_bench --benchmark_filter=Record
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "server/metrics/metrics.h"

namespace rcptguard::metrics {
namespace {

ServerMetrics& Shared() {
  static ServerMetrics* metrics = [] {
    MetricsOptions options;
    for (int i = 0; i < 20; ++i) {
      options.domains.push_back(absl::StrCat("domain", i, ".example"));
    }
    options.rule_names = {"burst", "slow", "subnet"};
    options.version = "bench";
    auto created = ServerMetrics::Create(std::move(options));
    if (!created.ok()) std::abort();
    ServerMetrics* m = created->release();
    for (int i = 0; i < 48; ++i) m->RecordEdgeRequest(absl::StrCat("mx", i));
    m->SetDirectory({.version = "v1",
                     .addresses = 100'000'000,
                     .domains = 20,
                     .built_at = absl::Now(),
                     .loaded_at = absl::Now()});
    m->SetHarvestSampler([] { return HarvestSample{.tracked_keys = 1000}; });
    return m;
  }();
  return *metrics;
}

void BM_RecordRequest(benchmark::State& state) {
  ServerMetrics& m = Shared();
  for (auto _ : state) {
    m.RecordRequest(Method::kValidate, absl::StatusCode::kOk,
                    absl::Microseconds(120));
  }
}
BENCHMARK(BM_RecordRequest)->ThreadRange(1, 4)->UseRealTime();

void BM_RecordRecipient(benchmark::State& state) {
  ServerMetrics& m = Shared();
  int i = 0;
  for (auto _ : state) {
    m.RecordRecipient(RecipientStatus::kValid, (i++ & 15));
  }
}
BENCHMARK(BM_RecordRecipient)->ThreadRange(1, 4)->UseRealTime();

void BM_RecordClientVerdict(benchmark::State& state) {
  ServerMetrics& m = Shared();
  for (auto _ : state) m.RecordClientVerdict(ClientAction::kTarpit, "slow");
}
BENCHMARK(BM_RecordClientVerdict)->ThreadRange(1, 4)->UseRealTime();

// A known edge: a hash and a lock-free probe.
void BM_RecordEdgeRequestKnown(benchmark::State& state) {
  ServerMetrics& m = Shared();
  const std::string id = absl::StrCat("mx", state.thread_index() * 7 % 48);
  for (auto _ : state) m.RecordEdgeRequest(id);
}
BENCHMARK(BM_RecordEdgeRequestKnown)->ThreadRange(1, 4)->UseRealTime();

// The cap is reached: an unknown edge folds into "other" without locking.
void BM_RecordEdgeRequestFolded(benchmark::State& state) {
  ServerMetrics& m = Shared();
  static bool filled = [&m] {
    for (int i = 0; i < 100; ++i) m.RecordEdgeRequest(absl::StrCat("fill", i));
    return true;
  }();
  benchmark::DoNotOptimize(filled);
  const std::string id = absl::StrCat("stranger-", state.thread_index());
  for (auto _ : state) m.RecordEdgeRequest(id);
}
BENCHMARK(BM_RecordEdgeRequestFolded)->ThreadRange(1, 4)->UseRealTime();

// Everything one Validate call of 5 recipients records.
void BM_RecordValidateCall(benchmark::State& state) {
  ServerMetrics& m = Shared();
  const std::string edge = absl::StrCat("mx", state.thread_index());
  for (auto _ : state) {
    m.RecordEdgeRequest(edge);
    m.RecordRecipientsPerRequest(5);
    m.RecordRecipient(RecipientStatus::kValid, 3, 4);
    m.RecordRecipient(RecipientStatus::kUnknown, 3, 1);
    m.RecordClientVerdict(ClientAction::kAccept, "");
    m.RecordRequest(Method::kValidate, absl::StatusCode::kOk,
                    absl::Microseconds(80));
  }
}
BENCHMARK(BM_RecordValidateCall)->ThreadRange(1, 4)->UseRealTime();

// One scrape: collect and render (about 500 series, with /proc reads).
void BM_Scrape(benchmark::State& state) {
  ServerMetrics& m = Shared();
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = SerializeText(m.collectables());
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Scrape);

}  // namespace
}  // namespace rcptguard::metrics

BENCHMARK_MAIN();
