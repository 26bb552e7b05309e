#include "tests/harvest_sim/traffic.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/strings.h"

namespace rcptguard::harvest_sim {
namespace {

uint64_t Fnv1a(std::string_view bytes, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t Mix(uint64_t x) {  // SplitMix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

struct Edge {
  std::string_view name;
  CallPattern pattern;
};
constexpr Edge kMx1{"mx1", CallPattern::kBatch};
constexpr Edge kMx2{"mx2", CallPattern::kPerRcpt};
constexpr Edge kMx3{"mx3", CallPattern::kBatch};
constexpr Edge kMx4{"mx4", CallPattern::kPerRcpt};
constexpr Edge kSubmit{"submit", CallPattern::kPerRcpt};

// Builds one scenario; owns its PRNG, seeded from the scenario's name.
class Gen {
 public:
  Gen(std::string name, Label label, std::string description,
      absl::Duration run)
      : run_(run), rng_(Fnv1a(name)), session_base_(Mix(Fnv1a(name)) << 24) {
    s_.name = std::move(name);
    s_.label = label;
    s_.description = std::move(description);
  }

  absl::Duration run() const { return run_; }
  double hours() const { return absl::ToDoubleHours(run_); }

  uint32_t AddSource(std::string ip, std::string group = "") {
    if (group.empty()) group = ip;
    s_.sources.push_back({std::move(ip), std::move(group)});
    return static_cast<uint32_t>(s_.sources.size() - 1);
  }

  // A new transaction; its stream is the source unless set afterwards.
  Transaction& Add(absl::Duration at, uint32_t source, const Edge& edge,
                   std::string mail_from, bool authenticated = false) {
    Transaction& t = s_.transactions.emplace_back();
    t.at = at;
    t.source = source;
    t.stream = source;
    t.edge = std::string(edge.name);
    t.pattern = edge.pattern;
    t.session = session_base_ + ++sessions_;
    t.mail_from = std::move(mail_from);
    t.authenticated = authenticated;
    return t;
  }

  // An existing mailbox: "user00042@example.com".
  Recipient Valid(int32_t domain, int k = -1) {
    if (k < 0) k = Int(0, 19999);
    return {absl::StrFormat("user%05d@%s", k, kDomains[domain]), domain, true,
            false};
  }
  // A stable address that does not exist: a departed member, a typo.
  Recipient Gone(std::string_view tag, int k, int32_t domain) {
    return {absl::StrFormat("%s%05d@%s", tag, k, kDomains[domain]), domain,
            false, false};
  }
  // A harvester's guess: a new address each time; about 2 % exist.
  Recipient Guess(int32_t domain) {
    if (Uniform() < 0.02) {
      Recipient r = Valid(domain);
      r.probe = true;
      return r;
    }
    return {absl::StrFormat("%s-%d@%s", kWords[Int(0, kWordCount - 1)],
                            ++guesses_, kDomains[domain]),
            domain, false, true};
  }

  double Uniform() { return std::uniform_real_distribution<double>()(rng_); }
  int Int(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  absl::Duration Exp(absl::Duration mean) {
    return absl::Seconds(std::exponential_distribution<double>(
        1.0 / absl::ToDoubleSeconds(mean))(rng_));
  }
  absl::Duration UniformTime(absl::Duration from, absl::Duration to) {
    return from + (to - from) * Uniform();
  }
  std::mt19937_64& rng() { return rng_; }

  Scenario Finish(double min_share, double max_share) {
    s_.min_unknown_share = min_share;
    s_.max_unknown_share = max_share;
    std::stable_sort(
        s_.transactions.begin(), s_.transactions.end(),
        [](const Transaction& a, const Transaction& b) { return a.at < b.at; });
    return std::move(s_);
  }
  Scenario& scenario() { return s_; }

 private:
  static constexpr std::string_view kWords[] = {
      "admin", "info",  "sales", "john", "mary",    "support", "office",
      "jobs",  "peter", "anna",  "mike", "sarah",   "billing", "hr",
      "david", "laura", "web",   "test", "contact", "paul"};
  static constexpr int kWordCount = 20;

  absl::Duration run_;
  std::mt19937_64 rng_;
  uint64_t session_base_;
  uint64_t sessions_ = 0;
  uint64_t guesses_ = 0;
  Scenario s_;
};

std::string RandomPublicV4(Gen& g) {
  int a = g.Int(11, 223);
  while (a == 127 || a == 100 || a == 172 || a == 192 || a == 198) {
    a = g.Int(11, 223);
  }
  return absl::StrCat(a, ".", g.Int(0, 255), ".", g.Int(0, 255), ".",
                      g.Int(1, 254));
}

std::string V6In64(std::string_view prefix64, Gen& g) {
  return absl::StrFormat("%s:%x:%x:%x:%x", prefix64, g.Int(0, 0xffff),
                         g.Int(0, 0xffff), g.Int(0, 0xffff), g.Int(1, 0xffff));
}

// Mostly one recipient, sometimes a few.
int SmallCount(Gen& g) {
  const double u = g.Uniform();
  return u < 0.6 ? 1 : u < 0.85 ? 2 : u < 0.95 ? 3 : 5;
}

// ---- Legitimate profiles ---------------------------------------------------

Scenario ProviderPool(absl::Duration run) {
  Gen g("legit-provider-pool", Label::kLegitimate,
        "provider outbound pool: 300 IPs in 6 /24s, ~12k txns/day, 2 % "
        "unknown",
        run);
  for (int net = 0; net < 6; ++net) {
    for (int host = 1; host <= 50; ++host) {
      const uint32_t src =
          g.AddSource(absl::StrCat("198.18.", 10 + net, ".", host));
      for (absl::Duration t = g.Exp(absl::Minutes(36)); t < run;
           t += g.Exp(absl::Minutes(36))) {
        Transaction& txn = g.Add(
            t, src, g.Uniform() < 0.5 ? kMx1 : kMx2,
            absl::StrCat("bounce-", g.Int(0, 99999), "@provider.example"));
        for (int n = SmallCount(g); n > 0; --n) {
          const int32_t d = g.Int(0, kDomainCount - 1);
          txn.recipients.push_back(g.Uniform() < 0.02
                                       ? g.Gone("typo", g.Int(0, 1999), d)
                                       : g.Valid(d));
        }
      }
    }
  }
  return g.Finish(0.01, 0.03);
}

Scenario ListDaily(absl::Duration run) {
  Gen g("legit-list-daily", Label::kLegitimate,
        "list server: daily burst of 6000 members in txns of 50-100, 3.5 % "
        "stale",
        run);
  const uint32_t src = g.AddSource("198.18.20.5");
  std::vector<Recipient> members;
  for (int i = 0; i < 6000; ++i) {
    members.push_back(g.Uniform() < 0.035 ? g.Gone("former", i, i % 2)
                                          : g.Valid(i % 2, i));
  }
  absl::Duration t = absl::Minutes(30);
  for (size_t i = 0; i < members.size();) {
    const size_t n = std::min<size_t>(g.Int(50, 100), members.size() - i);
    Transaction& txn = g.Add(t, src, kMx1, "list-bounces@lists.example");
    txn.recipients.assign(members.begin() + i, members.begin() + i + n);
    i += n;
    t += absl::Seconds(2);
  }
  return g.Finish(0.02, 0.05);
}

Scenario ListHourly(absl::Duration run) {
  Gen g("legit-list-hourly", Label::kLegitimate,
        "list server: every hour 1000 valid + 20 stale in 51 txns of 20", run);
  const uint32_t src = g.AddSource("198.18.21.5");
  std::vector<Recipient> members;
  for (int i = 0; i < 1000; ++i) members.push_back(g.Valid(0, 30000 + i));
  for (int i = 0; i < 20; ++i) members.push_back(g.Gone("former", i, 0));
  for (absl::Duration hour; hour < run; hour += absl::Hours(1)) {
    std::shuffle(members.begin(), members.end(), g.rng());
    for (int k = 0; k < 51; ++k) {
      Transaction& txn = g.Add(hour + absl::Minutes(5) + absl::Seconds(20 * k),
                               src, kMx1, "digest-bounces@lists.example");
      txn.recipients.assign(members.begin() + 20 * k,
                            members.begin() + 20 * (k + 1));
    }
  }
  return g.Finish(20.0 / 1020 - 1e-9, 20.0 / 1020 + 1e-9);
}

Scenario Backscatter(absl::Duration run) {
  Gen g("legit-backscatter", Label::kLegitimate,
        "backscatter: 60 MTAs send null-sender DSNs (1 rcpt, 85 % unknown; "
        "10 send 30-80 in an hour), then ordinary mail with valid rcpts",
        run);
  for (int m = 0; m < 60; ++m) {
    const uint32_t src = g.AddSource(RandomPublicV4(g));
    const bool heavy = m < 10;
    const int dsns = heavy ? g.Int(30, 80) : g.Int(1, 5);
    absl::Duration t = g.UniformTime(
        absl::ZeroDuration(), std::max(absl::Minutes(1), run - absl::Hours(1)));
    const absl::Duration gap =
        heavy ? absl::Minutes(50) / dsns : absl::Minutes(5);
    for (int i = 0; i < dsns; ++i, t += gap) {
      Transaction& txn = g.Add(t, src, g.Uniform() < 0.5 ? kMx1 : kMx2, "");
      const int32_t d = g.Int(0, kDomainCount - 1);
      txn.recipients.push_back(g.Uniform() < 0.85
                                   ? g.Gone("forged", g.Int(0, 999999), d)
                                   : g.Valid(d));
    }
    for (int i = g.Int(1, 5); i > 0; --i) {
      t += g.Exp(absl::Minutes(3));
      Transaction& txn = g.Add(t, src, g.Uniform() < 0.5 ? kMx1 : kMx2,
                               absl::StrCat("sender", m, "@mta.example"));
      for (int n = g.Int(1, 2); n > 0; --n) {
        txn.recipients.push_back(g.Valid(g.Int(0, kDomainCount - 1)));
      }
    }
  }
  return g.Finish(0.45, 0.85);
}

Scenario SaasRetry(absl::Duration run) {
  Gen g("legit-saas-retry", Label::kLegitimate,
        "SaaS notifier: the same departed address every 2 min all day, plus "
        "as much valid mail",
        run);
  const uint32_t src = g.AddSource("198.18.30.7");
  for (absl::Duration t = g.Exp(absl::Minutes(2)); t < run;
       t += absl::Minutes(2) + absl::Seconds(g.Int(-10, 10))) {
    Transaction& txn = g.Add(t, src, kMx2, "notify@saas.example");
    txn.recipients.push_back(g.Gone("departed.employee", 1, 0));
  }
  for (absl::Duration t = g.Exp(absl::Minutes(2)); t < run;
       t += g.Exp(absl::Minutes(2))) {
    g.Add(t, src, kMx2, "notify@saas.example").recipients.push_back(g.Valid(0));
  }
  return g.Finish(0.4, 0.6);
}

Scenario SmallOffice(absl::Duration run) {
  Gen g("legit-small-office", Label::kLegitimate,
        "small office server: 30 txns/day, 1-5 rcpts, rare typos", run);
  const uint32_t src = g.AddSource("198.18.40.20");
  for (absl::Duration t = g.Exp(absl::Minutes(48)); t < run;
       t += g.Exp(absl::Minutes(48))) {
    Transaction& txn = g.Add(t, src, kMx1, "boss@office.example");
    for (int n = g.Int(1, 5); n > 0; --n) {
      txn.recipients.push_back(
          g.Uniform() < 0.01 ? g.Gone("typo", g.Int(0, 99), 2) : g.Valid(2));
    }
  }
  return g.Finish(0.0, 0.03);
}

// A steady legitimate host: a txn every ~3 min, 1-2 rcpts, 1 % unknown.
Scenario Neighbour(std::string name, std::string description, std::string ip,
                   absl::Duration run) {
  Gen g(std::move(name), Label::kLegitimate, std::move(description), run);
  const uint32_t src = g.AddSource(std::move(ip));
  for (absl::Duration t = g.Exp(absl::Minutes(3)); t < run;
       t += g.Exp(absl::Minutes(3))) {
    Transaction& txn = g.Add(t, src, g.Uniform() < 0.5 ? kMx1 : kMx2,
                             "orders@neighbour.example");
    for (int n = g.Int(1, 2); n > 0; --n) {
      txn.recipients.push_back(
          g.Uniform() < 0.01 ? g.Gone("typo", g.Int(0, 99), 0) : g.Valid(0));
    }
  }
  return g.Finish(0.0, 0.03);
}

Scenario Submission(absl::Duration run) {
  Gen g("legit-submission", Label::kLegitimate,
        "authenticated submission: 20 NATed IPs, 1-4 internal rcpts, 3 % "
        "typos",
        run);
  for (int i = 1; i <= 20; ++i) {
    const uint32_t src = g.AddSource(absl::StrCat("198.18.50.", i));
    for (absl::Duration t = g.Exp(absl::Minutes(4)); t < run;
         t += g.Exp(absl::Minutes(4))) {
      Transaction& txn =
          g.Add(t, src, kSubmit,
                absl::StrFormat("user%05d@example.com", g.Int(0, 19999)),
                /*authenticated=*/true);
      for (int n = g.Int(1, 4); n > 0; --n) {
        txn.recipients.push_back(g.Uniform() < 0.03
                                     ? g.Gone("typo", g.Int(0, 9999), 0)
                                     : g.Valid(0));
      }
    }
  }
  return g.Finish(0.01, 0.05);
}

Scenario AllowlistedRelay(absl::Duration run) {
  Gen g("legit-allowlisted-relay", Label::kLegitimate,
        "own relay (allowlisted /32): a txn every 20 s, 5 % unknown", run);
  const uint32_t src = g.AddSource("198.18.60.1");
  g.scenario().allowlist.push_back("198.18.60.1/32");
  for (absl::Duration t = g.Exp(absl::Seconds(20)); t < run;
       t += g.Exp(absl::Seconds(20))) {
    Transaction& txn = g.Add(t, src, kMx1, "relay@corp.example");
    for (int n = g.Int(1, 3); n > 0; --n) {
      const int32_t d = g.Int(0, kDomainCount - 1);
      txn.recipients.push_back(
          g.Uniform() < 0.05 ? g.Gone("gone", g.Int(0, 4999), d) : g.Valid(d));
    }
  }
  return g.Finish(0.03, 0.07);
}

// ---- Harvesters ------------------------------------------------------------

// One IP, one stream, `per_hour` guesses in transactions of `batch` at
// `domain`, through the edges in turn (one new session per transaction, as
// a harvester that knows Postfix's per-session limits does).
Scenario OneIpHarvester(std::string name, std::string description,
                        std::string ip, int per_hour, int batch,
                        std::vector<Edge> edges, std::string mail_from,
                        absl::Duration run) {
  Gen g(std::move(name), Label::kHarvester, std::move(description), run);
  const uint32_t src = g.AddSource(std::move(ip));
  const absl::Duration gap = absl::Hours(1) * batch / per_hour;
  size_t k = 0;
  for (absl::Duration t = g.UniformTime(absl::ZeroDuration(), gap); t < run;
       t += gap, ++k) {
    Transaction& txn = g.Add(t, src, edges[k % edges.size()], mail_from);
    for (int n = 0; n < batch; ++n) txn.recipients.push_back(g.Guess(0));
  }
  return g.Finish(0.95, 1.0);
}

Scenario Mixing(absl::Duration run) {
  Gen g("harv-mixing", Label::kHarvester,
        "one IP, 1000 guesses/h, each txn 5 guesses + 15 already-known valid "
        "addresses (3 valid per unknown)",
        run);
  const uint32_t src = g.AddSource("203.0.113.111");
  std::vector<Recipient> known;
  for (int i = 0; i < 200; ++i) known.push_back(g.Valid(0));
  for (absl::Duration t = g.Exp(absl::Seconds(18)); t < run;
       t += absl::Seconds(18)) {
    Transaction& txn = g.Add(t, src, kMx1, "news@harvest.example");
    for (int n = 0; n < 5; ++n) txn.recipients.push_back(g.Guess(0));
    for (int n = 0; n < 15; ++n) {
      txn.recipients.push_back(known[g.Int(0, 199)]);
    }
    std::shuffle(txn.recipients.begin(), txn.recipients.end(), g.rng());
  }
  return g.Finish(0.22, 0.26);
}

Scenario RotateV4(absl::Duration run) {
  Gen g("harv-rotate-v4", Label::kHarvester,
        "256 IPs of one /24 round-robin, 3000 guesses/h in txns of 5", run);
  for (int i = 0; i < 256; ++i) {
    g.AddSource(absl::StrCat("192.0.2.", i), "192.0.2.0/24");
  }
  size_t k = 0;
  for (absl::Duration t = absl::Seconds(1); t < run;
       t += absl::Seconds(6), ++k) {
    Transaction& txn = g.Add(t, static_cast<uint32_t>(k % 256),
                             k % 2 ? kMx2 : kMx1, "news@harvest.example");
    for (int n = 0; n < 5; ++n) txn.recipients.push_back(g.Guess(0));
  }
  return g.Finish(0.95, 1.0);
}

// One host, a fresh address of `prefix64` for every transaction.
Scenario RotateV6(std::string name, std::string description,
                  std::string_view prefix64, int per_hour, int batch,
                  absl::Duration run) {
  Gen g(std::move(name), Label::kHarvester, std::move(description), run);
  const std::string group = absl::StrCat(ToAbsl(prefix64), "::/64");
  const absl::Duration gap = absl::Hours(1) * batch / per_hour;
  size_t k = 0;
  for (absl::Duration t = g.UniformTime(absl::ZeroDuration(), gap); t < run;
       t += gap, ++k) {
    const uint32_t src = g.AddSource(V6In64(prefix64, g), group);
    Transaction& txn =
        g.Add(t, src, k % 2 ? kMx2 : kMx1, "news@harvest.example");
    txn.stream = 0;
    for (int n = 0; n < batch; ++n) txn.recipients.push_back(g.Guess(0));
  }
  return g.Finish(0.95, 1.0);
}

Scenario Botnet(absl::Duration run) {
  Gen g("harv-botnet", Label::kHarvester,
        "botnet: 2000 IPs over many /16s, 3 guesses each (5 min apart) at "
        "example.net",
        run);
  for (int i = 0; i < 2000; ++i) {
    const uint32_t src = g.AddSource(RandomPublicV4(g), "example.net");
    absl::Duration t =
        g.UniformTime(absl::ZeroDuration(),
                      std::max(absl::Minutes(1), run - absl::Minutes(10)));
    for (int n = 0; n < 3; ++n, t += absl::Minutes(5)) {
      Transaction& txn = g.Add(t, src, g.Uniform() < 0.5 ? kMx1 : kMx2,
                               absl::StrCat("bot", i, "@botnet.example"));
      txn.recipients.push_back(g.Guess(1));
    }
  }
  return g.Finish(0.95, 1.0);
}

}  // namespace

std::string_view LabelName(Label label) {
  return label == Label::kHarvester ? "harvester" : "legit";
}

uint64_t Fingerprint(std::string_view address) { return Mix(Fnv1a(address)); }

uint64_t TransactionId(const Transaction& txn) {
  uint64_t h = Fnv1a(txn.edge);
  h = Fnv1a("\0", h);
  h = Fnv1a(absl::StrCat(txn.session), h);
  h = Fnv1a("\0", h);
  h = Mix(Fnv1a(txn.mail_from, h));
  return h == 0 ? 1 : h;
}

std::string NetworkOf(std::string_view ip) {
  if (ip.find(':') == std::string_view::npos) {
    const size_t dot = ip.rfind('.');
    return absl::StrCat(ToAbsl(ip.substr(0, dot)), ".0/24");
  }
  size_t end = 0;
  for (int colons = 0; colons < 4 && end != std::string_view::npos; ++colons) {
    end = ip.find(':', end == 0 ? 0 : end + 1);
  }
  return absl::StrCat(ToAbsl(ip.substr(0, end)), "::/64");
}

std::vector<World> BuildWorlds(absl::Duration run) {
  run = std::max(run, absl::Hours(1));
  std::vector<World> worlds;
  auto alone = [&](Scenario s) {
    World w;
    w.name = s.name;
    w.scenarios.push_back(std::move(s));
    worlds.push_back(std::move(w));
  };
  alone(ProviderPool(run));
  alone(ListDaily(run));
  alone(ListHourly(run));
  alone(Backscatter(run));
  alone(SaasRetry(run));
  alone(SmallOffice(run));
  alone(Submission(run));
  alone(AllowlistedRelay(run));
  {
    World w;
    w.name = "shared-v4-24";
    w.scenarios.push_back(
        Neighbour("legit-neighbour-v4",
                  "steady host 198.51.100.10, a harvester at .200 of its /24",
                  "198.51.100.10", run));
    w.scenarios.push_back(OneIpHarvester(
        "harv-neighbour-v4",
        "198.51.100.200 (a legit host's /24 neighbour), 600 guesses/h in "
        "txns of 10",
        "198.51.100.200", 600, 10, {kMx1}, "news@harvest.example", run));
    worlds.push_back(std::move(w));
  }
  {
    World w;
    w.name = "shared-v6-64";
    w.scenarios.push_back(Neighbour(
        "legit-neighbour-v6",
        "steady host 2001:db8:5:5::25, a harvester rotating in its /64",
        "2001:db8:5:5:0:0:0:25", run));
    w.scenarios.push_back(RotateV6(
        "harv-neighbour-v6",
        "a fresh address of 2001:db8:5:5::/64 (a legit host's /64) per txn, "
        "600 guesses/h in txns of 10",
        "2001:db8:5:5", 600, 10, run));
    worlds.push_back(std::move(w));
  }
  alone(OneIpHarvester("harv-fast-dictionary",
                       "one IP, 3000 guesses/h in txns of 20 (batching edge)",
                       "203.0.113.66", 3000, 20, {kMx1}, "news@harvest.example",
                       run));
  alone(OneIpHarvester(
      "harv-slow-low", "one IP, one guess a minute all day (per-RCPT edge)",
      "203.0.113.77", 60, 1, {kMx2}, "news@harvest.example", run));
  alone(OneIpHarvester("harv-null-sender",
                       "one IP, MAIL FROM:<>, one guess per txn, 300/h",
                       "203.0.113.88", 300, 1, {kMx1}, "", run));
  alone(RotateV4(run));
  alone(RotateV6("harv-rotate-v6",
                 "a fresh address of one /64 per txn, 3000 guesses/h in txns "
                 "of 5",
                 "2001:db8:66:66", 3000, 5, run));
  alone(Botnet(run));
  alone(OneIpHarvester("harv-multi-edge",
                       "one IP, 2000 guesses/h in txns of 10 spread over 4 "
                       "edges (2 batch, 2 per-RCPT)",
                       "203.0.113.99", 2000, 10, {kMx1, kMx2, kMx3, kMx4},
                       "news@harvest.example", run));
  alone(Mixing(run));
  alone(OneIpHarvester("harv-per-rcpt-edge",
                       "one IP, 1000 guesses/h in txns of 24, edge asks per "
                       "RCPT",
                       "203.0.113.122", 1000, 24, {kMx2},
                       "news@harvest.example", run));
  alone(OneIpHarvester("harv-batch-edge",
                       "one IP, 1000 guesses/h in txns of 24, edge asks per "
                       "txn",
                       "203.0.113.133", 1000, 24, {kMx1},
                       "news@harvest.example", run));
  return worlds;
}

}  // namespace rcptguard::harvest_sim
