// What harvest.shared costs Redis (docs/harvest-shared.md): Redis commands
// per second per replica at a given Validate rate, and Redis memory per
// tracked client. Two replicas (two Detectors with their Replicators, in
// this process) share a private redis-server (unix socket); Observe() is
// driven at --rate calls per second in all, split between them, over
// --clients client addresses (IPv4, so a /32 and a /24 key each), a share
// --unknown_share of the calls carrying one unknown recipient (the rest 10
// valid ones).
//
//   build-test/tests/bench/harvest_shared_bench --rate=50000 --seconds=10
//
// Prints the command counts from INFO commandstats (the replicators' own
// commands, and all commands including those the scripts run), and
// used_memory over the keys written.
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/clock.h"
#include "server/harvest/harvest.h"
#include "server/harvest_shared/replicator.h"
#include "tests/testutil/redis.h"
#include "tests/testutil/subprocess.h"

ABSL_FLAG(int, rate, 50000, "Observe() calls per second, both replicas");
ABSL_FLAG(int, seconds, 10, "how long to drive the load");
ABSL_FLAG(int, clients, 20000, "distinct client addresses");
ABSL_FLAG(double, unknown_share, 0.05,
          "share of calls with one unknown recipient");
ABSL_FLAG(int, flush_ms, 250, "flush interval");

namespace rcptguard {
namespace {

struct Stats {
  std::vector<std::pair<std::string, uint64_t>> calls;  // by command
  uint64_t total = 0;
  uint64_t used_memory = 0;
  uint64_t keys = 0;
};

Stats Read(testing::RedisServer& redis) {
  Stats s;
  std::string info = redis.Cli({"INFO", "commandstats"}).value_or("");
  for (absl::string_view line : absl::StrSplit(info, '\n')) {
    // cmdstat_evalsha:calls=12,usec=...
    if (!absl::ConsumePrefix(&line, "cmdstat_")) continue;
    const size_t colon = line.find(':');
    const size_t calls = line.find("calls=");
    if (colon == absl::string_view::npos || calls == absl::string_view::npos) {
      continue;
    }
    absl::string_view n = line.substr(calls + 6);
    n = n.substr(0, n.find(','));
    uint64_t v = 0;
    if (!absl::SimpleAtoi(n, &v)) continue;
    s.calls.emplace_back(std::string(line.substr(0, colon)), v);
    s.total += v;
  }
  std::string mem = redis.Cli({"INFO", "memory"}).value_or("");
  for (absl::string_view line : absl::StrSplit(mem, '\n')) {
    if (absl::ConsumePrefix(&line, "used_memory:")) {
      absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &s.used_memory);
    }
  }
  absl::SimpleAtoi(redis.Cli({"DBSIZE"}).value_or("0"), &s.keys);
  return s;
}

uint64_t Calls(const Stats& s, std::string_view cmd) {
  for (const auto& [c, n] : s.calls) {
    if (c == cmd) return n;
  }
  return 0;
}

int Main() {
  testing::ScopedTempDir dir("rg-redis-bench");
  auto redis = testing::RedisServer::Start(dir.path());
  if (!redis.ok()) {
    std::fprintf(stderr, "redis: %s\n",
                 std::string(redis.status().message()).c_str());
    return 1;
  }
  struct Replica {
    std::unique_ptr<harvest::Detector> detector;
    std::unique_ptr<harvest_shared::Replicator> replicator;
  };
  std::vector<Replica> replicas(2);
  for (Replica& r : replicas) {
    r.detector = *harvest::Detector::Create(harvest::HarvestConfig::Defaults(),
                                            RealClock::Get(), 1);
    harvest_shared::Replicator::Options o;
    o.address = (*redis)->address();
    o.flush_interval = absl::Milliseconds(absl::GetFlag(FLAGS_flush_ms));
    r.replicator = *harvest_shared::Replicator::Create(o, r.detector.get());
    r.replicator->Start();
  }
  absl::SleepFor(absl::Milliseconds(500));
  const Stats before = Read(**redis);

  const int rate = absl::GetFlag(FLAGS_rate);
  const int seconds = absl::GetFlag(FLAGS_seconds);
  const int clients = absl::GetFlag(FLAGS_clients);
  const double unknown_share = absl::GetFlag(FLAGS_unknown_share);
  std::vector<std::string> ips;
  for (int i = 0; i < clients; ++i) {
    const uint32_t a = 0x0a000000u + static_cast<uint32_t>(i) * 7;
    ips.push_back(absl::StrCat(a >> 24, ".", a >> 16 & 255, ".", a >> 8 & 255,
                               ".", a & 255));
  }
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> coin(0, 1);
  uint64_t fp[1];
  const absl::Time start = absl::Now();
  const int64_t total = int64_t{rate} * seconds;
  for (int64_t n = 0; n < total; ++n) {
    // Paced in steps of 1 ms.
    if (n % (rate / 1000 + 1) == 0) {
      const absl::Time due = start + absl::Seconds(1) * (double(n) / rate);
      const absl::Duration wait = due - absl::Now();
      if (wait > absl::ZeroDuration()) absl::SleepFor(wait);
    }
    harvest::Observation o;
    o.client_ip = ips[static_cast<size_t>(n) % ips.size()];
    if (coin(rng) < unknown_share) {
      o.unknown = 1;
      o.valid = 9;
      fp[0] = rng();
      o.unknown_fingerprints = fp;
    } else {
      o.valid = 10;
    }
    replicas[static_cast<size_t>(n) % 2].detector->Observe(o);
  }
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  absl::SleepFor(absl::Milliseconds(3 * absl::GetFlag(FLAGS_flush_ms) + 200));
  const Stats after = Read(**redis);
  const double run = elapsed;

  std::printf(
      "load: %d Observe/s for %.1f s over %d clients, %.0f%% with an "
      "unknown recipient, 2 replicas, flush every %d ms\n",
      rate, run, clients, unknown_share * 100, absl::GetFlag(FLAGS_flush_ms));
  uint64_t fetched = 0;
  for (const Replica& r : replicas)
    fetched += r.replicator->status().keys_fetched;
  const double evalsha =
      (Calls(after, "evalsha") - Calls(before, "evalsha")) / run / 2;
  const double polls =
      (Calls(after, "zrangebyscore") - Calls(before, "zrangebyscore") +
       Calls(after, "zremrangebyscore") - Calls(before, "zremrangebyscore")) /
      run / 2;
  std::printf(
      "replicator commands per replica: %.0f /s (EVALSHA %.0f/s, "
      "HGETALL fetches %.0f/s, polls %.0f/s)\n",
      evalsha + fetched / run / 2 + polls, evalsha, fetched / run / 2, polls);
  std::printf("all Redis commands incl. inside scripts: %.0f /s in all\n",
              (after.total - before.total) / run);
  for (const Replica& r : replicas) {
    const auto st = r.replicator->status();
    std::printf(
        "replica: flushes %llu, keys sent %llu, fetched %llu, "
        "errors %llu, dropped %llu, mean flush %.2f ms\n",
        static_cast<unsigned long long>(st.flushes),
        static_cast<unsigned long long>(st.keys_sent),
        static_cast<unsigned long long>(st.keys_fetched),
        static_cast<unsigned long long>(st.errors),
        static_cast<unsigned long long>(st.dropped_deltas),
        st.flush_count ? 1000 * st.flush_seconds_sum / st.flush_count : 0.0);
  }
  const uint64_t keys = after.keys > 3 ? after.keys - 3 : 0;  // + fixed keys
  std::printf(
      "redis: %llu keys (%d clients: a /32 and a /24 each), "
      "used_memory %+.1f MB, %.0f bytes per key, %.0f per client\n",
      static_cast<unsigned long long>(after.keys), clients,
      (double(after.used_memory) - double(before.used_memory)) / 1e6,
      keys ? (double(after.used_memory) - before.used_memory) / keys : 0.0,
      (double(after.used_memory) - before.used_memory) / clients);
  return 0;
}

}  // namespace
}  // namespace rcptguard

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return rcptguard::Main();
}
