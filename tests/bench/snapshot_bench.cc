// Benchmarks of snapshot files: write, load, and lookups after a load.
//
//   RG_BENCH_SNAPSHOT_SIZES=10000000,100000000 RG_BENCH_DIR=/var/tmp
//   snapshot_bench --benchmark_counters_tabular=true
//
// For each size N (default 10M) one directory of N random fingerprints in
// two domains is built with FingerprintSet::Build (no hashing of strings),
// then:
//   Write/N               WriteSnapshot (encode, checksum, write, fsync,
//                         rename, fsync folder).
//   Load/N/copy|map       ReadSnapshot from the page cache, slots read into
//                         huge pages or mapped in place.
//   LoadCold/N/copy|map   the same after evicting the file from the page
//                         cache (posix_fadvise DONTNEED: only this file).
//   Checksum/N            the checksum alone over the in-memory slots.
//   VerifyLayout/N        FingerprintSet::FromSlots alone (the layout pass).
//   Lookup/N/built|copy|map  ContainsBatch of 2^20 fingerprints (half hits)
//                         over the set as built, and as loaded each way:
//                         what the storage choice costs at query time.
// Load and write report addresses/s (items_per_second) and seconds.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "server/directory/directory.h"
#include "server/directory/fingerprint_set.h"
#include "server/directory/siphash.h"
#include "server/snapshot/snapshot_file.h"
#include "tests/testutil/snapshot_files.h"

namespace rcptguard::snapshot {
namespace {

using directory::Directory;
using directory::DomainPolicy;
using directory::FingerprintSet;

constexpr directory::SipKey kKey{0x5eed5eed5eed5eedULL, 0x0123456789abcdefULL};
constexpr size_t kQueries = size_t{1} << 20;

// Member i of the synthetic directory (i < N); i >= N are non-members.
uint64_t Fingerprint(uint64_t i) { return testing::SyntheticFingerprint(i); }

std::vector<DomainPolicy> Domains() {
  DomainPolicy a;
  a.name = "example.com";
  a.aliases = {"example.net"};
  a.subaddress_delimiters = "+";
  DomainPolicy b;
  b.name = "example.org";
  return {a, b};
}

SnapshotMetadata BenchMeta() {
  SnapshotMetadata meta;
  meta.source = "bench";
  meta.version = "v1";
  return meta;
}

std::string Dir() {
  const char* env = std::getenv("RG_BENCH_DIR");
  return env != nullptr ? env : "/tmp";
}

void Note(const std::string& what, absl::Time start) {
  std::fprintf(stderr, "[fixture] %s: %.2f s\n", what.c_str(),
               absl::ToDoubleSeconds(absl::Now() - start));
}

// One size's directory, its snapshot file and its loaded forms. Only one
// fixture lives at a time (100M addresses take ~1 GB per copy).
struct Fixture {
  size_t n = 0;
  std::shared_ptr<const Directory> built;
  std::string path;
  std::map<SlotStorage, std::shared_ptr<const Directory>> loaded;
  std::vector<uint64_t> queries;

  ~Fixture() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

Fixture& GetFixture(size_t n) {
  static std::unique_ptr<Fixture> current;
  if (current != nullptr && current->n == n) return *current;
  current.reset();  // free the previous size first
  auto f = std::make_unique<Fixture>();
  f->n = n;
  absl::Time start = absl::Now();
  absl::StatusOr<std::shared_ptr<const Directory>> built =
      testing::SyntheticDirectory(kKey, Domains(), n);
  if (!built.ok()) std::abort();
  f->built = *std::move(built);
  Note(absl::StrCat("built ", n, " fingerprints"), start);
  f->path = absl::StrCat(Dir(), "/snapshot_bench.", ::getpid(), ".rgs");
  start = absl::Now();
  absl::Status st = WriteSnapshot(*f->built, BenchMeta(), f->path);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", std::string(st.message()).c_str());
    std::abort();
  }
  Note("wrote the snapshot", start);
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<uint64_t> pick(0, 2 * n - 1);
  f->queries.resize(kQueries);
  for (uint64_t& q : f->queries) q = Fingerprint(pick(rng));
  current = std::move(f);
  return *current;
}

const char* StorageName(SlotStorage s) {
  return s == SlotStorage::kMappedFile ? "map" : "copy";
}

void EvictFromPageCache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) std::abort();
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

void Report(benchmark::State& state, size_t n) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}

void BM_Write(benchmark::State& state, size_t n) {
  Fixture& f = GetFixture(n);
  const std::string path = f.path + ".w";
  for (auto _ : state) {
    absl::Status st = WriteSnapshot(*f.built, BenchMeta(), path);
    if (!st.ok()) state.SkipWithError(std::string(st.message()).c_str());
  }
  Report(state, n);
  state.counters["GB"] =
      static_cast<double>(f.built->fingerprints().all_slots().size()) * 8 / 1e9;
  ::unlink(path.c_str());
}

void BM_Load(benchmark::State& state, size_t n, SlotStorage storage,
             bool cold) {
  Fixture& f = GetFixture(n);
  f.loaded.erase(storage);  // do not hold two loads of one kind
  ReadOptions options;
  options.slot_storage = storage;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      EvictFromPageCache(f.path);
      state.ResumeTiming();
    }
    absl::StatusOr<LoadedSnapshot> loaded =
        ReadSnapshot(f.path, kKey, Domains(), options);
    if (!loaded.ok()) {
      state.SkipWithError(std::string(loaded.status().message()).c_str());
      break;
    }
    if (loaded->directory->address_count() != f.built->address_count())
      std::abort();
    state.PauseTiming();
    loaded = absl::CancelledError("freed outside the timing");
    state.ResumeTiming();
  }
  Report(state, n);
}

void BM_Checksum(benchmark::State& state, size_t n) {
  Fixture& f = GetFixture(n);
  const auto slots = f.built->fingerprints().all_slots();
  const std::string_view bytes(reinterpret_cast<const char*>(slots.data()),
                               slots.size() * 8);
  for (auto _ : state) benchmark::DoNotOptimize(ChecksumOf(bytes));
  state.SetBytesProcessed(
      static_cast<int64_t>(state.iterations() * bytes.size()));
  Report(state, n);
}

void BM_VerifyLayout(benchmark::State& state, size_t n) {
  Fixture& f = GetFixture(n);
  const FingerprintSet& set = f.built->fingerprints();
  std::vector<FingerprintSet::ShardExtent> extents;
  for (size_t s = 0; s < set.shard_count(); ++s)
    extents.push_back(set.shard_extent(s));
  for (auto _ : state) {
    absl::StatusOr<FingerprintSet> copy = FingerprintSet::FromSlots(
        set.shard_bits(), extents, set.all_slots(), nullptr);
    if (!copy.ok() || copy->size() != set.size()) std::abort();
  }
  Report(state, n);
}

void BM_Lookup(benchmark::State& state, size_t n, int which) {
  Fixture& f = GetFixture(n);
  std::shared_ptr<const Directory> dir = f.built;
  if (which >= 0) {
    const auto storage = static_cast<SlotStorage>(which);
    auto it = f.loaded.find(storage);
    if (it == f.loaded.end()) {
      ReadOptions options;
      options.slot_storage = storage;
      absl::StatusOr<LoadedSnapshot> loaded =
          ReadSnapshot(f.path, kKey, Domains(), options);
      if (!loaded.ok()) std::abort();
      it = f.loaded.emplace(storage, loaded->directory).first;
    }
    dir = it->second;
  }
  const FingerprintSet& set = dir->fingerprints();
  std::unique_ptr<bool[]> out(new bool[kQueries]);
  size_t hits = 0;
  for (auto _ : state) {
    set.ContainsBatch(f.queries, out.get());
    hits = 0;
    for (size_t i = 0; i < kQueries; ++i) hits += out[i];
    benchmark::DoNotOptimize(hits);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kQueries));
  state.counters["hit_rate"] = static_cast<double>(hits) / kQueries;
}

std::vector<size_t> Sizes() {
  const char* env = std::getenv("RG_BENCH_SNAPSHOT_SIZES");
  std::vector<size_t> sizes;
  for (absl::string_view part :
       absl::StrSplit(env != nullptr ? env : "10000000", ',')) {
    size_t n = 0;
    if (absl::SimpleAtoi(part, &n) && n > 0) sizes.push_back(n);
  }
  return sizes;
}

void Register() {
  for (size_t n : Sizes()) {
    const std::string s = absl::StrCat(n);
    benchmark::RegisterBenchmark(absl::StrCat("Write/", s).c_str(), BM_Write, n)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->Iterations(2);
    for (bool cold : {false, true}) {
      for (SlotStorage storage :
           {SlotStorage::kHugePageCopy, SlotStorage::kMappedFile}) {
        benchmark::RegisterBenchmark(absl::StrCat(cold ? "LoadCold/" : "Load/",
                                                  s, "/", StorageName(storage))
                                         .c_str(),
                                     BM_Load, n, storage, cold)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->Iterations(3);
      }
    }
    benchmark::RegisterBenchmark(absl::StrCat("Checksum/", s).c_str(),
                                 BM_Checksum, n)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->Iterations(3);
    benchmark::RegisterBenchmark(absl::StrCat("VerifyLayout/", s).c_str(),
                                 BM_VerifyLayout, n)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->Iterations(3);
    benchmark::RegisterBenchmark(absl::StrCat("Lookup/", s, "/built").c_str(),
                                 BM_Lookup, n, -1)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    for (SlotStorage storage :
         {SlotStorage::kHugePageCopy, SlotStorage::kMappedFile}) {
      benchmark::RegisterBenchmark(
          absl::StrCat("Lookup/", s, "/", StorageName(storage)).c_str(),
          BM_Lookup, n, static_cast<int>(storage))
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace rcptguard::snapshot

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  rcptguard::snapshot::Register();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
