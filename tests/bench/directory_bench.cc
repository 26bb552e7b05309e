// Benchmarks of the directory's lookup path.
//
//   directory_bench --benchmark_min_time=0.5
//
// One shared fixture (built once, on first use) holds N synthetic addresses
// "user0001234@example.com" (N = 10M, or RG_BENCH_ADDRESSES), and queries
// drawn uniformly from 2N names, so about half of them are hits:
//   (a) FingerprintSet::ContainsBatch on precomputed fingerprints;
//   (b) Directory::LookupBatch on raw address strings (parse + SipHash +
//       probe);
//   (c) absl::flat_hash_set<std::string> lookups of the same strings (the
//       plaintext baseline; no parsing);
//   (d) independent random reads over the set's own slot array with the same
//       prefetching (the hardware floor for one cache miss per lookup).
// Each reports items/s, an item being one address.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "server/address/address.h"
#include "server/directory/directory.h"
#include "server/directory/fingerprint_set.h"
#include "server/directory/siphash.h"

namespace rcptguard::directory {
namespace {

constexpr SipKey kKey{0x5eed5eed5eed5eedULL, 0x0123456789abcdefULL};
// Query streams are cycled through; they are made large enough that the
// cache lines they touch do not all stay cached between two passes (this
// machine class may have a few hundred MB of L3).
constexpr size_t kStringQueries = size_t{1} << 22;  // 4M strings for (b), (c)
constexpr size_t kFpQueries = size_t{1} << 24;  // 16M fingerprints: (a), (d)

size_t AddressCount() {
  const char* env = std::getenv("RG_BENCH_ADDRESSES");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 10'000'000;
}

// "user0001234@example.com": the normalized form, so the plaintext baseline
// can look the strings up as they are.
std::string Name(size_t i) {
  return absl::StrFormat("user%07d@example.com", i);
}

void Log(const char* what, absl::Time start) {
  std::fprintf(stderr, "[fixture] %s: %.1f s\n", what,
               absl::ToDoubleSeconds(absl::Now() - start));
}

struct Queries {
  std::vector<std::string> names;       // kStringQueries
  std::vector<std::string_view> views;  // views of `names`
  std::vector<uint64_t> fps;            // kFpQueries
};

const Queries& GetQueries() {
  static const Queries* const q = [] {
    absl::Time start = absl::Now();
    const size_t n = AddressCount();
    auto* q = new Queries;
    std::mt19937_64 rng(1);
    std::uniform_int_distribution<size_t> pick(0, 2 * n - 1);
    q->names.reserve(kStringQueries);
    for (size_t i = 0; i < kStringQueries; ++i)
      q->names.push_back(Name(pick(rng)));
    q->views.assign(q->names.begin(), q->names.end());
    q->fps.reserve(kFpQueries);
    for (size_t i = 0; i < kFpQueries; ++i) {
      q->fps.push_back(AddressFingerprint(kKey, Name(pick(rng))));
    }
    Log("queries", start);
    return q;
  }();
  return *q;
}

const FingerprintSet& GetSet() {
  static const FingerprintSet* const set = [] {
    absl::Time start = absl::Now();
    const size_t n = AddressCount();
    std::vector<uint64_t> fps;
    fps.reserve(n);
    for (size_t i = 0; i < n; ++i)
      fps.push_back(AddressFingerprint(kKey, Name(i)));
    auto* set = new FingerprintSet(FingerprintSet::Build(std::move(fps)));
    Log("FingerprintSet::Build", start);
    std::fprintf(stderr,
                 "[fixture] %zu fingerprints, %d shard bits, %.3f bytes each, "
                 "%.1f MiB\n",
                 set->size(), set->shard_bits(),
                 static_cast<double>(set->MemoryBytes()) / set->size(),
                 set->MemoryBytes() / 1048576.0);
    return set;
  }();
  return *set;
}

const Directory& GetDirectory() {
  static const std::shared_ptr<const Directory>* const dir = [] {
    absl::Time start = absl::Now();
    std::vector<DomainPolicy> domains = {
        DomainPolicy{.name = "example.com",
                     .mode = DomainMode::kEnforce,
                     .subaddress_delimiters = "+",
                     .aliases = {},
                     .replies = {}}};
    absl::StatusOr<DirectoryBuilder> builder =
        DirectoryBuilder::Create(kKey, std::move(domains));
    if (!builder.ok()) std::abort();
    const size_t n = AddressCount();
    builder->Reserve(n);
    for (size_t i = 0; i < n; ++i) builder->AddAddress(Name(i));
    auto built = std::move(*builder).Build(DirectoryInfo{});
    if (!built.ok()) std::abort();
    Log("Directory build", start);
    return new std::shared_ptr<const Directory>(*std::move(built));
  }();
  return **dir;
}

const absl::flat_hash_set<std::string>& GetStringSet() {
  static const absl::flat_hash_set<std::string>* const set = [] {
    absl::Time start = absl::Now();
    const size_t n = AddressCount();
    auto* set = new absl::flat_hash_set<std::string>;
    set->reserve(n);
    for (size_t i = 0; i < n; ++i) set->insert(Name(i));
    Log("flat_hash_set<std::string> build", start);
    return set;
  }();
  return *set;
}

// Random slot indexes over the set's slot array, for (d).
const std::vector<uint64_t>& GetRandomSlots() {
  static const std::vector<uint64_t>* const idx = [] {
    const size_t slots = GetSet().all_slots().size();
    auto* idx = new std::vector<uint64_t>(kFpQueries);
    std::mt19937_64 rng(2);
    std::uniform_int_distribution<uint64_t> pick(0, slots - 1);
    for (uint64_t& i : *idx) i = pick(rng);
    return idx;
  }();
  return *idx;
}

// Next `batch` positions in a query stream of `total`, wrapping around.
size_t Advance(size_t& pos, size_t batch, size_t total) {
  if (pos + batch > total) pos = 0;
  const size_t at = pos;
  pos += batch;
  return at;
}

// (a)
void BM_FingerprintSetContainsBatch(benchmark::State& state) {
  const FingerprintSet& set = GetSet();
  const Queries& q = GetQueries();
  const size_t batch = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> out_storage(batch);
  bool* out = reinterpret_cast<bool*>(out_storage.data());
  size_t pos = 0, hits = 0;
  for (auto _ : state) {
    const size_t at = Advance(pos, batch, kFpQueries);
    set.ContainsBatch(absl::MakeConstSpan(&q.fps[at], batch), out);
    for (size_t i = 0; i < batch; ++i) hits += out[i];
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["hit_ratio"] =
      static_cast<double>(hits) / (state.iterations() * batch);
}
BENCHMARK(BM_FingerprintSetContainsBatch)->Arg(64)->Arg(16)->Arg(256);

// (a') one at a time: no overlap of misses.
void BM_FingerprintSetContainsSingle(benchmark::State& state) {
  const FingerprintSet& set = GetSet();
  const Queries& q = GetQueries();
  size_t pos = 0, hits = 0;
  for (auto _ : state) {
    const size_t at = Advance(pos, 64, kFpQueries);
    for (size_t i = 0; i < 64; ++i) hits += set.Contains(q.fps[at + i]);
  }
  benchmark::DoNotOptimize(hits);
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_FingerprintSetContainsSingle);

// (b)
void BM_DirectoryLookupBatch(benchmark::State& state) {
  const Directory& dir = GetDirectory();
  const Queries& q = GetQueries();
  const size_t batch = static_cast<size_t>(state.range(0));
  std::vector<LookupResult> out(batch);
  size_t pos = 0, valid = 0;
  for (auto _ : state) {
    const size_t at = Advance(pos, batch, kStringQueries);
    dir.LookupBatch(absl::MakeConstSpan(&q.views[at], batch), out.data());
    for (const LookupResult& r : out) valid += r.status == LookupStatus::kValid;
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["hit_ratio"] =
      static_cast<double>(valid) / (state.iterations() * batch);
}
BENCHMARK(BM_DirectoryLookupBatch)->Arg(64);

// Part of (b): SipHash-2-4 of the 23-byte address strings alone.
void BM_AddressFingerprint(benchmark::State& state) {
  const Queries& q = GetQueries();
  size_t pos = 0;
  uint64_t acc = 0;
  for (auto _ : state) {
    const size_t at = Advance(pos, 64, kStringQueries);
    for (size_t i = 0; i < 64; ++i)
      acc ^= AddressFingerprint(kKey, q.views[at + i]);
  }
  benchmark::DoNotOptimize(acc);
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_AddressFingerprint);

// Part of (b): the fast path of address normalization alone.
void BM_NormalizeSimpleAddress(benchmark::State& state) {
  const Queries& q = GetQueries();
  size_t pos = 0;
  size_t acc = 0;
  char out[address::kSimpleAddressBuffer];
  for (auto _ : state) {
    const size_t at = Advance(pos, 64, kStringQueries);
    for (size_t i = 0; i < 64; ++i) {
      size_t split = 0;
      acc += address::NormalizeSimpleAddress(q.views[at + i], out, &split);
      acc += split;
    }
  }
  benchmark::DoNotOptimize(acc);
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_NormalizeSimpleAddress);

// (c)
void BM_FlatHashSetStringLookup(benchmark::State& state) {
  const absl::flat_hash_set<std::string>& set = GetStringSet();
  const Queries& q = GetQueries();
  size_t pos = 0, hits = 0;
  for (auto _ : state) {
    const size_t at = Advance(pos, 64, kStringQueries);
    for (size_t i = 0; i < 64; ++i)
      hits += set.contains(
          absl::string_view(q.views[at + i].data(), q.views[at + i].size()));
  }
  state.SetItemsProcessed(state.iterations() * 64);
  state.counters["hit_ratio"] =
      static_cast<double>(hits) / (state.iterations() * 64);
}
BENCHMARK(BM_FlatHashSetStringLookup);

// (d)
void BM_RandomAccessFloor(benchmark::State& state) {
  const uint64_t* slots = GetSet().all_slots().data();
  const std::vector<uint64_t>& idx = GetRandomSlots();
  const bool prefetch = state.range(0) != 0;
  size_t pos = 0;
  uint64_t sum = 0;
  for (auto _ : state) {
    const size_t at = Advance(pos, 64, kFpQueries);
    if (prefetch) {
      for (size_t i = 0; i < 64; ++i) __builtin_prefetch(slots + idx[at + i]);
    }
    for (size_t i = 0; i < 64; ++i) sum += slots[idx[at + i]];
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_RandomAccessFloor)->ArgName("prefetch")->Arg(1)->Arg(0);

}  // namespace
}  // namespace rcptguard::directory

BENCHMARK_MAIN();
