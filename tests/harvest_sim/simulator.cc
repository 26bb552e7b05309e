#include "tests/harvest_sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/strings.h"

namespace rcptguard::harvest_sim {
namespace {

struct Stream {
  size_t scenario = 0;
  std::vector<size_t> txns;  // indexes into the scenario's transactions
  size_t next = 0;           // the transaction in progress or next
  size_t pos = 0;            // its next recipient
  absl::Duration txn_delay;  // delay so far in the transaction in progress
  bool txn_tempfail = false;
  bool txn_reject = false;
};

// Per scenario, while a world runs.
struct Tally {
  Measures m;
  std::vector<bool> blocked;           // by source
  std::vector<uint32_t> source_hours;  // source * hours + hour
  std::vector<uint32_t> group_of;      // by source
  std::vector<uint32_t> group_hours;   // group * hours + hour
};

absl::Status RunWorld(const World& world, const PolicySpec& spec,
                      absl::Duration run, std::vector<Measures>* out) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  const absl::Time end = start + run;
  const int hours =
      static_cast<int>(std::ceil(absl::ToDoubleHours(run) - 1e-9));

  std::vector<std::string> allowlist;
  for (const Scenario& s : world.scenarios) {
    allowlist.insert(allowlist.end(), s.allowlist.begin(), s.allowlist.end());
  }
  absl::StatusOr<std::unique_ptr<Policy>> policy = spec.make(&clock, allowlist);
  if (!policy.ok()) return policy.status();

  std::vector<Tally> tallies(world.scenarios.size());
  std::vector<Stream> streams;
  for (size_t si = 0; si < world.scenarios.size(); ++si) {
    const Scenario& s = world.scenarios[si];
    Tally& t = tallies[si];
    t.m.truthful_by_hour.assign(hours, 0);
    t.blocked.assign(s.sources.size(), false);
    t.source_hours.assign(s.sources.size() * hours, 0);
    absl::flat_hash_map<std::string, uint32_t> groups;
    for (const Source& src : s.sources) {
      auto [it, inserted] =
          groups.try_emplace(src.group, static_cast<uint32_t>(groups.size()));
      t.group_of.push_back(it->second);
    }
    t.group_hours.assign(groups.size() * hours, 0);
    absl::flat_hash_map<uint32_t, size_t> stream_of;
    for (size_t i = 0; i < s.transactions.size(); ++i) {
      auto [it, inserted] =
          stream_of.try_emplace(s.transactions[i].stream, streams.size());
      if (inserted) {
        streams.emplace_back();
        streams.back().scenario = si;
      }
      streams[it->second].txns.push_back(i);
    }
  }

  using Event = std::tuple<absl::Time, size_t>;  // (when, stream)
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue;
  for (size_t i = 0; i < streams.size(); ++i) {
    const Scenario& s = world.scenarios[streams[i].scenario];
    queue.emplace(start + s.transactions[streams[i].txns[0]].at, i);
  }

  std::vector<Answer> answers;
  while (!queue.empty()) {
    auto [now, si] = queue.top();
    queue.pop();
    if (now >= end) continue;
    Stream& st = streams[si];
    const Scenario& s = world.scenarios[st.scenario];
    Tally& tally = tallies[st.scenario];
    Measures& m = tally.m;
    const Transaction& txn = s.transactions[st.txns[st.next]];
    const size_t n = txn.recipients.size();
    if (st.pos == 0) {
      ++m.transactions;
      st.txn_delay = absl::ZeroDuration();
      st.txn_tempfail = st.txn_reject = false;
    }
    const size_t count = txn.pattern == CallPattern::kBatch ? n - st.pos : 1;
    clock.Set(now);
    answers.clear();
    (*policy)->Answer({.txn = &txn,
                       .client_ip = s.sources[txn.source].ip,
                       .first = st.pos,
                       .count = count,
                       .now = now},
                      &answers);
    if (answers.empty() || answers.size() > count ||
        (answers.size() < count && !answers.back().disconnect)) {
      return absl::InternalError(absl::StrCat(
          spec.name, ": ", answers.size(), " answers for a call of ", count));
    }
    absl::Duration call_delay;
    bool disconnected = false;
    for (size_t i = 0; i < answers.size(); ++i) {
      const Answer& a = answers[i];
      const Recipient& r = txn.recipients[st.pos + i];
      call_delay += a.delay;
      ++m.recipients;
      if (a.reply == Reply::kTempfail) {
        st.txn_tempfail = true;
        ++m.recipients_tempfailed;
      } else if (a.reply == Reply::kReject) {
        st.txn_reject = true;
        ++m.recipients_rejected;
      }
      if (s.label == Label::kHarvester && r.probe) {
        ++m.probes;
        if (a.reply == Reply::kTruthful) {
          ++m.truthful;
          const int hour = std::min(
              hours - 1,
              static_cast<int>((now + call_delay - start) / absl::Hours(1)));
          ++m.truthful_by_hour[hour];
          ++tally.source_hours[txn.source * hours + hour];
          ++tally.group_hours[tally.group_of[txn.source] * hours + hour];
          if (!tally.blocked[txn.source]) ++m.truthful_before_block;
        }
      }
      if (a.reply != Reply::kTruthful || a.disconnect) {
        tally.blocked[txn.source] = true;
      }
      if (a.disconnect) {
        disconnected = true;
        // The recipients never sent share the fate of the session.
        const uint64_t lost = n - st.pos - i - 1;
        if (a.reply == Reply::kReject) {
          m.recipients_rejected += lost;
        } else {
          m.recipients_tempfailed += lost;
          st.txn_tempfail = true;
        }
      }
    }
    st.txn_delay += call_delay;
    st.pos += answers.size();
    absl::Time next = now + call_delay + kCallLatency;
    if (st.pos < n && !disconnected) {
      queue.emplace(next, si);
      continue;
    }
    if (st.txn_delay > absl::ZeroDuration()) ++m.delayed;
    m.delay_seconds += absl::ToDoubleSeconds(st.txn_delay);
    if (st.txn_tempfail) ++m.tempfailed;
    if (st.txn_reject) ++m.rejected;
    st.pos = 0;
    if (++st.next < st.txns.size()) {
      queue.emplace(std::max(next, start + s.transactions[st.txns[st.next]].at),
                    si);
    }
  }

  for (const Stream& st : streams) {
    // The transaction in progress at the end was counted as started.
    const size_t started = st.next + (st.pos > 0 ? 1 : 0);
    tallies[st.scenario].m.unsent +=
        st.txns.size() - std::min(started, st.txns.size());
  }
  for (size_t si = 0; si < tallies.size(); ++si) {
    Tally& t = tallies[si];
    for (uint32_t c : t.source_hours) {
      t.m.worst_source_hour = std::max(t.m.worst_source_hour, c);
    }
    for (uint32_t c : t.group_hours) {
      t.m.worst_group_hour = std::max(t.m.worst_group_hour, c);
    }
    out->push_back(std::move(t.m));
  }
  return absl::OkStatus();
}

bool IsAnchor(const std::string& policy) {
  return policy.rfind("rcptguard", 0) != 0;
}

}  // namespace

uint32_t Measures::worst_hour() const {
  uint32_t worst = 0;
  for (uint32_t c : truthful_by_hour) worst = std::max(worst, c);
  return worst;
}

absl::StatusOr<SimResults> Simulate(const std::vector<World>& worlds,
                                    const std::vector<PolicySpec>& policies,
                                    const SimOptions& options) {
  SimResults results;
  results.run = options.run;
  for (const PolicySpec& p : policies) results.policies.push_back(p.name);
  for (const World& w : worlds) {
    const size_t first = results.scenarios.size();
    for (const Scenario& s : w.scenarios) {
      ScenarioResult& r = results.scenarios.emplace_back();
      r.name = s.name;
      r.world = w.name;
      r.label = s.label;
      r.description = s.description;
      r.transactions = s.transactions.size();
      for (const Transaction& t : s.transactions) {
        for (const Recipient& rcpt : t.recipients) r.probes += rcpt.probe;
      }
    }
    for (const PolicySpec& p : policies) {
      std::vector<Measures> measures;
      if (absl::Status st = RunWorld(w, p, options.run, &measures); !st.ok()) {
        return st;
      }
      for (size_t i = 0; i < measures.size(); ++i) {
        results.scenarios[first + i].by_policy.push_back(
            std::move(measures[i]));
      }
    }
  }
  return results;
}

std::vector<std::string> CheckBar(const SimResults& results,
                                  const std::string& policy, const Bar& bar) {
  std::vector<std::string> violations;
  const auto it =
      std::find(results.policies.begin(), results.policies.end(), policy);
  if (it == results.policies.end()) {
    return {absl::StrCat("no policy named \"", policy, "\" in the results")};
  }
  const size_t p = it - results.policies.begin();
  for (const ScenarioResult& s : results.scenarios) {
    const Measures& m = s.by_policy[p];
    if (s.label == Label::kLegitimate) {
      if (m.tempfailed > 0) {
        violations.push_back(absl::StrCat(s.name, ": ", m.tempfailed,
                                          " transactions tempfailed (bar 0)"));
      }
      if (m.rejected > 0) {
        violations.push_back(absl::StrCat(s.name, ": ", m.rejected,
                                          " transactions rejected (bar 0)"));
      }
      if (m.delay_seconds > bar.max_delay_seconds) {
        violations.push_back(absl::StrFormat(
            "%s: %.0f s of delay over %d transactions (bar %.0f s)", s.name,
            m.delay_seconds, m.delayed, bar.max_delay_seconds));
      }
      continue;
    }
    if (m.worst_source_hour > bar.max_per_source_hour) {
      violations.push_back(
          absl::StrCat(s.name, ": ", m.worst_source_hour,
                       " truthful answers to one source in an hour (bar ",
                       bar.max_per_source_hour, ")"));
    }
    if (m.worst_group_hour > bar.max_per_group_hour) {
      violations.push_back(absl::StrCat(
          s.name, ": ", m.worst_group_hour,
          " truthful answers to one /24, /64 or target domain in an hour (bar ",
          bar.max_per_group_hour, ")"));
    }
    if (bar.at_most_best_anchor) {
      for (size_t a = 0; a < results.policies.size(); ++a) {
        if (!IsAnchor(results.policies[a])) continue;
        if (m.truthful > s.by_policy[a].truthful) {
          violations.push_back(absl::StrFormat(
              "%s: %.1f truthful answers per hour, more than under %s (%.1f)",
              s.name, m.truthful_per_hour(results.run), results.policies[a],
              s.by_policy[a].truthful_per_hour(results.run)));
        }
      }
    }
  }
  return violations;
}

std::string FormatTable(const SimResults& results) {
  std::string out;
  auto header = [&](std::string_view what) {
    absl::StrAppend(&out, "| scenario | ", ToAbsl(what), " |");
    for (const std::string& p : results.policies) {
      absl::StrAppend(&out, " ", p, " |");
    }
    absl::StrAppend(&out, "\n|---|---|");
    for (size_t i = 0; i < results.policies.size(); ++i) out += "---|";
    out += "\n";
  };
  absl::StrAppend(
      &out, "Harvesters over ", absl::FormatDuration(results.run),
      ". Each cell: guesses sent / truthful answers per hour (average) / "
      "in the worst hour / to one source in its worst hour / before each "
      "source's first block (summed over sources).\n\n");
  header("guesses intended");
  for (const ScenarioResult& s : results.scenarios) {
    if (s.label != Label::kHarvester) continue;
    absl::StrAppend(&out, "| ", s.name, " | ", s.probes, " |");
    for (const Measures& m : s.by_policy) {
      absl::StrAppendFormat(&out, " %d / %.1f / %d / %d / %d |", m.probes,
                            m.truthful_per_hour(results.run), m.worst_hour(),
                            m.worst_source_hour, m.truthful_before_block);
    }
    out += "\n";
  }
  absl::StrAppend(&out, "\nLegitimate senders over ",
                  absl::FormatDuration(results.run),
                  ". Each cell: transactions delayed / total delay in "
                  "seconds / transactions tempfailed (451, 421) / rejected "
                  "(550 5.7.1, DHAP 550).\n\n");
  header("transactions");
  for (const ScenarioResult& s : results.scenarios) {
    if (s.label != Label::kLegitimate) continue;
    absl::StrAppend(&out, "| ", s.name, " | ", s.transactions, " |");
    for (const Measures& m : s.by_policy) {
      absl::StrAppendFormat(&out, " %d / %.0f / %d / %d |", m.delayed,
                            m.delay_seconds, m.tempfailed, m.rejected);
    }
    out += "\n";
  }
  return out;
}

}  // namespace rcptguard::harvest_sim
