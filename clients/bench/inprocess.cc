// The in-process modes of rcptguard-bench: lookups with no network, to
// compare the gRPC path with what one core can do.
//
//   inprocess-hashset     absl::flat_hash_set<std::string> of the valid
//                         addresses, `contains` per recipient (the naive
//                         floor: no parsing, no normalization)
//   inprocess-directory   the real directory::Directory built from the same
//                         addresses, Directory::LookupBatch in batches of
//                         `batch` raw strings
//   random-access         independent random 8-byte reads over a table the
//                         size of the directory's slot arrays, prefetched
//                         `batch` at a time (the hardware floor for one cache
//                         miss per lookup)
//
// Queries are drawn once up front (QueryGenerator) and cycled through, so
// the timed loop does nothing but look up and check. `threads` threads run
// the loop over different parts of the query list. Two per-core figures are
// reported: the rate per thread (wall clock; run at most one thread per
// core) and lookups per CPU second the process used (what a core does when
// the machine is shared).
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "clients/bench/bench.h"
#include "common/strings.h"
#include "server/directory/directory.h"
#include "server/directory/fingerprint_set.h"

namespace rcptguard::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Queries {
  std::vector<std::string> addresses;
  std::vector<std::string_view> views;
  std::vector<uint8_t> valid;
};

Queries MakeQueries(const BenchOptions& o, const Workload& w) {
  // Enough that one pass does not stay in cache (the shared machines have a
  // large L3), and at least a few batches.
  const size_t n =
      std::clamp<size_t>(2 * w.valid.size(), size_t{1} << 16, size_t{1} << 22);
  Queries q;
  q.addresses.resize(n);
  q.valid.resize(n);
  QueryGenerator gen(w, o.unknown_share, o.seed, 0);
  for (size_t i = 0; i < n; ++i) q.valid[i] = gen.Next(&q.addresses[i]);
  q.views.assign(q.addresses.begin(), q.addresses.end());
  return q;
}

// Runs `body(thread, begin)` on every thread until the time or the request
// budget is spent; body processes one batch starting at query `begin` and
// returns the errors it found. Counts into *report.
template <typename Body>
void RunTimed(const BenchOptions& o, size_t query_count, Body body,
              Report* report) {
  const size_t batch = static_cast<size_t>(o.batch);
  std::atomic<uint64_t> issued{0};
  std::vector<Report> per_thread(o.threads);
  const double cpu0 = SelfCpuSeconds();
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + absl::ToChronoNanoseconds(o.duration);
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] {
      Report& r = per_thread[t];
      size_t pos = query_count / o.threads * t;
      uint64_t errors = 0;
      for (uint64_t round = 0;; ++round) {
        // The clock and the shared budget are consulted every 16 batches.
        if ((round & 15) == 0) {
          if (Clock::now() >= end) break;
          if (o.max_requests != 0 &&
              issued.fetch_add(16, std::memory_order_relaxed) >=
                  o.max_requests) {
            break;
          }
        }
        if (pos + batch > query_count) pos = 0;
        errors += body(t, pos);
        pos += batch;
        r.requests++;
        r.recipients += batch;
      }
      if (errors > 0) r.AddError("wrong_answer", errors);
    });
  }
  for (std::thread& t : threads) t.join();
  report->seconds = std::chrono::duration<double>(Clock::now() - start).count();
  report->client_cpu_seconds = SelfCpuSeconds() - cpu0;
  for (const Report& r : per_thread) report->MergeCounts(r);
}

absl::Status RunHashset(const BenchOptions& o, const Workload& w,
                        const Queries& q, Report* report) {
  absl::flat_hash_set<std::string> set;
  set.reserve(w.valid.size());
  uint64_t heap = 0;
  for (const std::string& a : w.valid) {
    if (set.insert(a).second && a.size() > 15) heap += a.size() + 1;
  }
  report->table_entries = set.size();
  report->table_bytes = set.capacity() * (sizeof(std::string) + 1) + heap;
  const size_t batch = static_cast<size_t>(o.batch);
  RunTimed(
      o, q.views.size(),
      [&](int, size_t at) {
        uint64_t errors = 0;
        for (size_t i = at; i < at + batch; ++i) {
          errors += set.contains(ToAbsl(q.views[i])) != (q.valid[i] != 0);
        }
        return errors;
      },
      report);
  return absl::OkStatus();
}

absl::Status RunDirectory(const BenchOptions& o, const Workload& w,
                          const Queries& q, Report* report) {
  std::vector<directory::DomainPolicy> domains;
  for (const std::string& d : w.domains) {
    directory::DomainPolicy p;
    p.name = d;
    // Not = "+": GCC 12 warns (-Wrestrict) wrongly about that.
    p.subaddress_delimiters.assign(1, '+');
    domains.push_back(std::move(p));
  }
  absl::StatusOr<directory::DirectoryBuilder> builder =
      directory::DirectoryBuilder::Create(directory::SipKey::Random(),
                                          std::move(domains));
  if (!builder.ok()) return builder.status();
  builder->Reserve(w.valid.size());
  for (const std::string& a : w.valid) builder->AddAddress(a);
  absl::StatusOr<std::shared_ptr<const directory::Directory>> dir =
      std::move(*builder).Build(directory::DirectoryInfo{});
  if (!dir.ok()) return dir.status();
  const directory::Directory& d = **dir;
  report->table_entries = d.address_count();
  report->table_bytes = d.fingerprints().MemoryBytes();
  const size_t batch = static_cast<size_t>(o.batch);
  std::vector<std::vector<directory::LookupResult>> out(
      o.threads, std::vector<directory::LookupResult>(batch));
  RunTimed(
      o, q.views.size(),
      [&](int t, size_t at) {
        std::vector<directory::LookupResult>& results = out[t];
        d.LookupBatch(absl::MakeConstSpan(&q.views[at], batch), results.data());
        uint64_t errors = 0;
        for (size_t i = 0; i < batch; ++i) {
          const bool valid =
              results[i].status == directory::LookupStatus::kValid;
          errors += valid != (q.valid[at + i] != 0) ||
                    (!valid &&
                     results[i].status != directory::LookupStatus::kUnknown);
        }
        return errors;
      },
      report);
  return absl::OkStatus();
}

absl::Status RunRandomAccess(const BenchOptions& o, const Workload& w,
                             Report* report) {
  // As many slots as the directory's FingerprintSet would have.
  const size_t slots = std::max<size_t>(
      1024, static_cast<size_t>(static_cast<double>(w.valid.size()) /
                                directory::FingerprintSet::kLoadFactor));
  const size_t bytes = slots * sizeof(uint64_t);
  void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return absl::ResourceExhaustedError("mmap failed");
  // Huge pages, as the directory asks for its slots.
  ::madvise(mem, bytes, MADV_HUGEPAGE);
  uint64_t* table = static_cast<uint64_t*>(mem);
  std::mt19937_64 rng(o.seed);
  for (size_t i = 0; i < slots; ++i) table[i] = rng() | 1;
  constexpr size_t kIndexes = size_t{1} << 22;
  std::vector<uint64_t> idx(kIndexes);
  std::uniform_int_distribution<uint64_t> pick(0, slots - 1);
  for (uint64_t& i : idx) i = pick(rng);
  report->table_entries = slots;
  report->table_bytes = bytes;
  const size_t batch = static_cast<size_t>(o.batch);
  std::atomic<uint64_t> sink{0};
  RunTimed(
      o, kIndexes,
      [&](int, size_t at) {
        for (size_t i = at; i < at + batch; ++i)
          __builtin_prefetch(table + idx[i]);
        uint64_t sum = 0;
        for (size_t i = at; i < at + batch; ++i) sum += table[idx[i]];
        // Uses the sum, so the reads cannot be optimized away.
        if (sum == 0) sink.fetch_add(1, std::memory_order_relaxed);
        return uint64_t{0};
      },
      report);
  ::munmap(mem, bytes);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Report> RunInProcess(const BenchOptions& options,
                                    const Workload& workload) {
  Report report;
  report.mode = ModeName(options.mode);
  report.batch = options.batch;
  report.threads = options.threads;
  absl::Status status;
  if (options.mode == Mode::kRandomAccess) {
    status = RunRandomAccess(options, workload, &report);
  } else {
    const Queries q = MakeQueries(options, workload);
    status = options.mode == Mode::kInprocessHashset
                 ? RunHashset(options, workload, q, &report)
                 : RunDirectory(options, workload, q, &report);
  }
  if (!status.ok()) return status;
  return report;
}

}  // namespace rcptguard::bench
