// Cost of harvest detection on the request path: Detector::Observe() per
// call (one SMTP transaction, 10 recipients), with the real clock.
//
//   hot key      one client, every call hits the same two keys
//   100k keys    100,000 clients cycling, all tracked (no eviction)
//   flood        1,000,000 random clients against a bound of 100,000 keys:
//                nearly every call inserts two keys and evicts two
//
// Each runs with 1 and 2 threads sharing one Detector. The *Shared variants
// run the same with harvest.shared's recording on (Detector::RecordDeltas):
// what Observe pays for sharing. A real replica drains the deltas on its
// own thread every 250 ms (about 12,500 calls at 50 k Validate/s); here
// the first thread drains them every 8,192 of its calls, inside the timed
// loop, which over-counts the drain rather than hiding it. Redis I/O is
// never on this path (tests/bench/harvest_shared_bench.cc measures it).
// Build with -DCMAKE_BUILD_TYPE=Release for meaningful numbers.
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "server/harvest/harvest.h"
#include "server/harvest/ip_prefix.h"
#include "server/harvest/shared_state.h"

namespace rcptguard::harvest {
namespace {

std::unique_ptr<Detector> MakeDetector(size_t max_keys, bool shared = false) {
  HarvestConfig config = HarvestConfig::Defaults();
  config.max_tracked_keys = max_keys;
  std::unique_ptr<Detector> d =
      *Detector::Create(config, RealClock::Get(), /*domain_count=*/100);
  if (shared) d->RecordDeltas(nullptr);
  return d;
}

// What the replicator's thread does every flush interval, amortized.
inline void MaybeDrain(benchmark::State& state, Detector* d, size_t& n) {
  if (state.thread_index() == 0 && (++n & 8191) == 0) {
    benchmark::DoNotOptimize(d->TakeDeltas(1'000'000));
  }
}

std::vector<std::string> RandomIps(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> ips;
  ips.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t r = rng();
    if (i % 4 == 3) {  // a quarter IPv6
      ips.push_back(absl::StrCat("2001:db8:", absl::Hex(r >> 16), ":",
                                 absl::Hex(r & 0xffff),
                                 "::", absl::Hex(rng() & 0xffff)));
    } else {
      ips.push_back(absl::StrCat(r >> 24, ".", r >> 16 & 255, ".", r >> 8 & 255,
                                 ".", r & 255));
    }
  }
  return ips;
}

// A typical transaction: 9 valid recipients and 1 unknown, with its
// fingerprint and transaction id as the service passes them.
Observation Typical(std::string_view ip) {
  static const uint64_t kFingerprint[] = {0x9e3779b97f4a7c15ULL};
  Observation o;
  o.client_ip = ip;
  o.valid = 9;
  o.unknown = 1;
  o.unknown_fingerprints = kFingerprint;
  o.transaction = 42;
  return o;
}

void BM_ParseIp(benchmark::State& state) {
  const std::vector<std::string> ips = RandomIps(1024, 1);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ParseIp(ips[i++ & 1023]));
  }
}
BENCHMARK(BM_ParseIp);

void BM_ObserveHotKey(benchmark::State& state) {
  static Detector* const d = MakeDetector(1'000'000).release();
  Observation o = Typical("192.0.2.1");
  o.unknown = 0;
  o.valid = 10;
  for (auto _ : state) benchmark::DoNotOptimize(d->Observe(o));
}
BENCHMARK(BM_ObserveHotKey)->Threads(1)->Threads(2)->UseRealTime();

// The same key, already rejected: the verdict carries the reply strings.
void BM_ObserveHotOffender(benchmark::State& state) {
  static Detector* const d = MakeDetector(1'000'000).release();
  const Observation o = Typical("198.51.100.66");
  for (auto _ : state) benchmark::DoNotOptimize(d->Observe(o));
}
BENCHMARK(BM_ObserveHotOffender)->Threads(1)->Threads(2)->UseRealTime();

void BM_Observe100kKeys(benchmark::State& state) {
  static Detector* const d = MakeDetector(1'000'000).release();
  static const std::vector<std::string>* const ips =
      new std::vector<std::string>(RandomIps(100'000, 2));
  size_t i = static_cast<size_t>(state.thread_index()) * 50'000;
  for (auto _ : state) {
    benchmark::DoNotOptimize(d->Observe(Typical((*ips)[i])));
    if (++i == ips->size()) i = 0;
  }
}
BENCHMARK(BM_Observe100kKeys)->Threads(1)->Threads(2)->UseRealTime();

void BM_ObserveFlood(benchmark::State& state) {
  static Detector* const d = MakeDetector(100'000).release();
  static const std::vector<std::string>* const ips =
      new std::vector<std::string>(RandomIps(1'000'000, 3));
  size_t i = static_cast<size_t>(state.thread_index()) * 500'000;
  for (auto _ : state) {
    benchmark::DoNotOptimize(d->Observe(Typical((*ips)[i])));
    if (++i == ips->size()) i = 0;
  }
  if (state.thread_index() == 0) {
    const DetectorStats st = d->Stats();
    state.counters["tracked_keys"] = static_cast<double>(st.tracked_keys);
  }
}
BENCHMARK(BM_ObserveFlood)->Threads(1)->Threads(2)->UseRealTime();

void BM_ObserveHotKeyShared(benchmark::State& state) {
  static Detector* const d = MakeDetector(1'000'000, true).release();
  Observation o = Typical("192.0.2.1");
  o.unknown = 0;
  o.valid = 10;
  size_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(d->Observe(o));
    MaybeDrain(state, d, n);
  }
}
BENCHMARK(BM_ObserveHotKeyShared)->Threads(1)->Threads(2)->UseRealTime();

void BM_ObserveHotOffenderShared(benchmark::State& state) {
  static Detector* const d = MakeDetector(1'000'000, true).release();
  const Observation o = Typical("198.51.100.66");
  size_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(d->Observe(o));
    MaybeDrain(state, d, n);
  }
}
BENCHMARK(BM_ObserveHotOffenderShared)->Threads(1)->Threads(2)->UseRealTime();

void BM_Observe100kKeysShared(benchmark::State& state) {
  static Detector* const d = MakeDetector(1'000'000, true).release();
  static const std::vector<std::string>* const ips =
      new std::vector<std::string>(RandomIps(100'000, 2));
  size_t i = static_cast<size_t>(state.thread_index()) * 50'000;
  size_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(d->Observe(Typical((*ips)[i])));
    if (++i == ips->size()) i = 0;
    MaybeDrain(state, d, n);
  }
}
BENCHMARK(BM_Observe100kKeysShared)->Threads(1)->Threads(2)->UseRealTime();

void BM_ObserveFloodShared(benchmark::State& state) {
  static Detector* const d = MakeDetector(100'000, true).release();
  static const std::vector<std::string>* const ips =
      new std::vector<std::string>(RandomIps(1'000'000, 3));
  size_t i = static_cast<size_t>(state.thread_index()) * 500'000;
  size_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(d->Observe(Typical((*ips)[i])));
    if (++i == ips->size()) i = 0;
    MaybeDrain(state, d, n);
  }
}
BENCHMARK(BM_ObserveFloodShared)->Threads(1)->Threads(2)->UseRealTime();

void BM_Peek(benchmark::State& state) {
  static Detector* const d = MakeDetector(1'000'000).release();
  d->Observe(Typical("192.0.2.1"));
  for (auto _ : state) benchmark::DoNotOptimize(d->Peek("192.0.2.1"));
}
BENCHMARK(BM_Peek);

}  // namespace
}  // namespace rcptguard::harvest

// Debian's Abseil is built without NDEBUG, so absl::Mutex runs its deadlock
// detector (a graph update on every Lock) unless told not to. A release
// server should turn it off the same way; RG_BENCH_MUTEX_DEBUG=1 keeps it to
// measure the difference.
int main(int argc, char** argv) {
  const char* keep = std::getenv("RG_BENCH_MUTEX_DEBUG");
  if (keep == nullptr || std::string_view(keep) != "1") {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
