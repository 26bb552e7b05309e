// Workload, report formatting, /proc reading and target checks for
// rcptguard-bench (bench.h).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "clients/bench/bench.h"
#include "common/net.h"

namespace rcptguard::bench {

absl::StatusOr<Mode> ParseMode(const std::string& text) {
  for (Mode m :
       {Mode::kUnary, Mode::kStream, Mode::kGrpcFloor, Mode::kLdap,
        Mode::kInprocessHashset, Mode::kInprocessDirectory, Mode::kRandomAccess,
        Mode::kClientUnary, Mode::kClientStream, Mode::kClientBatch}) {
    if (text == ModeName(m)) return m;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown --mode '", text,
      "': want unary, stream, grpc-floor, ldap, inprocess-hashset, "
      "inprocess-directory, random-access, client-unary, client-stream or "
      "client-batch"));
}

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kUnary:
      return "unary";
    case Mode::kStream:
      return "stream";
    case Mode::kGrpcFloor:
      return "grpc-floor";
    case Mode::kLdap:
      return "ldap";
    case Mode::kInprocessHashset:
      return "inprocess-hashset";
    case Mode::kInprocessDirectory:
      return "inprocess-directory";
    case Mode::kRandomAccess:
      return "random-access";
    case Mode::kClientUnary:
      return "client-unary";
    case Mode::kClientStream:
      return "client-stream";
    case Mode::kClientBatch:
      return "client-batch";
  }
  return "?";
}

namespace {

void AddDomain(Workload& w, absl::flat_hash_set<std::string>& seen,
               const std::string& address) {
  const size_t at = address.rfind('@');
  std::string domain = absl::AsciiStrToLower(address.substr(at + 1));
  if (seen.insert(domain).second) w.domains.push_back(std::move(domain));
}

}  // namespace

absl::StatusOr<Workload> LoadWorkload(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  Workload w;
  absl::flat_hash_set<std::string> seen;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    absl::string_view t = absl::StripAsciiWhitespace(line);
    if (t.empty() || t[0] == '#') continue;
    if (!absl::StrContains(t, '@')) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_no, ": not an address: ", t));
    }
    w.valid.emplace_back(t);
    AddDomain(w, seen, w.valid.back());
  }
  if (w.valid.empty())
    return absl::InvalidArgumentError(absl::StrCat(path, ": no addresses"));
  return w;
}

Workload GenerateWorkload(uint64_t n, const std::string& domain) {
  Workload w;
  w.valid.reserve(n);
  for (uint64_t i = 0; i < n; ++i)
    w.valid.push_back(absl::StrCat("user", i, "@", domain));
  w.domains.push_back(absl::AsciiStrToLower(domain));
  return w;
}

QueryGenerator::QueryGenerator(const Workload& workload, double unknown_share,
                               uint64_t seed, uint64_t stream)
    : workload_(workload),
      rng_(seed * 0x9e3779b97f4a7c15ULL + stream),
      pick_valid_(0, workload.valid.empty() ? 0 : workload.valid.size() - 1),
      unknown_(std::clamp(unknown_share, 0.0, 1.0)),
      stream_(stream) {}

bool QueryGenerator::Next(std::string* address) {
  if (workload_.valid.empty() || unknown_(rng_)) {
    const std::string& domain =
        workload_.domains[unknown_count_ % workload_.domains.size()];
    address->clear();
    absl::StrAppend(address, "rg-bench-unknown-", stream_, "-",
                    unknown_count_++, "@", domain);
    return false;
  }
  *address = workload_.valid[pick_valid_(rng_)];
  return true;
}

uint64_t Report::ErrorsTotal() const {
  uint64_t total = 0;
  for (const auto& [kind, n] : errors) total += n;
  return total;
}

void Report::MergeCounts(const Report& other) {
  requests += other.requests;
  recipients += other.recipients;
  latency.Merge(other.latency);
  for (const auto& [kind, n] : other.errors) errors[kind] += n;
  for (const auto& [kind, n] : other.client_actions) client_actions[kind] += n;
}

namespace {

double PerSecond(uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0;
}

// Lookups per second of CPU the threads actually got: on a shared machine,
// the per-core rate that wall-clock time understates.
double PerCpuSecond(const Report& r) {
  return r.client_cpu_seconds > 0
             ? static_cast<double>(r.recipients) / r.client_cpu_seconds
             : 0;
}

bool InProcess(const Report& r) {
  return r.mode == "inprocess-hashset" || r.mode == "inprocess-directory" ||
         r.mode == "random-access";
}

double CpuPerMillion(const Report& r) {
  if (r.server_cpu_seconds < 0 || r.recipients == 0) return -1;
  return r.server_cpu_seconds / (static_cast<double>(r.recipients) / 1e6);
}

std::string Micros(uint64_t ns) {
  return absl::StrFormat("%.1f", static_cast<double>(ns) / 1000.0);
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string JsonMap(const std::map<std::string, uint64_t>& m) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : m) {
    absl::StrAppend(&out, first ? "" : ", ", JsonString(k), ": ", v);
    first = false;
  }
  return out + "}";
}

std::string JsonNumber(double v) {
  if (v < 0) return "null";
  return absl::StrFormat("%.6g", v);
}

}  // namespace

std::string FormatTable(const Report& r) {
  std::string out;
  auto row = [&out](absl::string_view name, const std::string& value) {
    absl::StrAppend(&out, absl::StrFormat("  %-36s %s\n", name, value));
  };
  absl::StrAppend(&out, "rcptguard-bench ", r.mode, "\n");
  if (!r.target.empty()) row("target", r.target);
  if (InProcess(r)) {
    row("threads", absl::StrCat(r.threads));
    row("batch", absl::StrCat(r.batch));
    row("table", absl::StrFormat("%d entries, %.1f MiB", r.table_entries,
                                 r.table_bytes / 1048576.0));
  } else {
    row("batch / concurrency / connections",
        absl::StrCat(r.batch, " / ", r.concurrency, " / ", r.connections));
    row("client threads", absl::StrCat(r.client_threads));
    if (r.requests_per_message > 0) {
      row("requests per stream message",
          absl::StrFormat("%.2f", r.requests_per_message));
    }
    if (r.stream_depth > 0) {
      row("messages in flight per stream", absl::StrCat(r.stream_depth));
    }
  }
  row("duration", absl::StrFormat("%.2f s", r.seconds));
  row("requests", absl::StrFormat("%d (%.0f/s)", r.requests,
                                  PerSecond(r.requests, r.seconds)));
  row("recipients", absl::StrFormat("%d (%.0f/s)", r.recipients,
                                    PerSecond(r.recipients, r.seconds)));
  if (InProcess(r)) {
    row("lookups/s per thread",
        absl::StrFormat("%.0f", PerSecond(r.recipients, r.seconds) /
                                    std::max(1, r.threads)));
    row("lookups per CPU second", absl::StrFormat("%.0f", PerCpuSecond(r)));
  }
  if (r.latency.count() > 0) {
    row("latency us p50/p90/p99/p99.9",
        absl::StrCat(Micros(r.latency.Percentile(0.5)), " / ",
                     Micros(r.latency.Percentile(0.9)), " / ",
                     Micros(r.latency.Percentile(0.99)), " / ",
                     Micros(r.latency.Percentile(0.999))));
    row("latency us min/mean/max",
        absl::StrCat(Micros(r.latency.min()), " / ",
                     absl::StrFormat("%.1f", r.latency.Mean() / 1000.0), " / ",
                     Micros(r.latency.max())));
  }
  row("errors", absl::StrCat(r.ErrorsTotal()));
  for (const auto& [kind, n] : r.errors)
    row(absl::StrCat("  ", kind), absl::StrCat(n));
  for (const auto& [kind, n] : r.client_actions)
    row(absl::StrCat("client action ", kind), absl::StrCat(n));
  if (r.server_cpu_seconds >= 0) {
    row("server CPU",
        absl::StrFormat("%.2f s (%.2f cores)", r.server_cpu_seconds,
                        r.server_cpu_seconds / r.seconds));
    row("server CPU s per M recipients",
        absl::StrFormat("%.3f", CpuPerMillion(r)));
  }
  row("client CPU",
      absl::StrFormat("%.2f s (%.2f cores)", r.client_cpu_seconds,
                      r.seconds > 0 ? r.client_cpu_seconds / r.seconds : 0));
  return out;
}

std::string FormatJson(const Report& r) {
  std::string out = "{";
  absl::StrAppend(&out, "\"mode\": ", JsonString(r.mode));
  absl::StrAppend(&out, ", \"target\": ", JsonString(r.target));
  absl::StrAppend(&out, ", \"batch\": ", r.batch);
  absl::StrAppend(&out, ", \"concurrency\": ", r.concurrency);
  absl::StrAppend(&out, ", \"stream_depth\": ", r.stream_depth);
  absl::StrAppend(&out, ", \"requests_per_message\": ", r.requests_per_message);
  absl::StrAppend(&out, ", \"connections\": ", r.connections);
  absl::StrAppend(&out, ", \"client_threads\": ", r.client_threads);
  absl::StrAppend(&out, ", \"threads\": ", r.threads);
  absl::StrAppend(&out, ", \"seconds\": ", JsonNumber(r.seconds));
  absl::StrAppend(&out, ", \"requests\": ", r.requests);
  absl::StrAppend(&out, ", \"recipients\": ", r.recipients);
  absl::StrAppend(&out, ", \"requests_per_second\": ",
                  JsonNumber(PerSecond(r.requests, r.seconds)));
  absl::StrAppend(&out, ", \"recipients_per_second\": ",
                  JsonNumber(PerSecond(r.recipients, r.seconds)));
  if (InProcess(r)) {
    absl::StrAppend(&out, ", \"lookups_per_second_per_thread\": ",
                    JsonNumber(PerSecond(r.recipients, r.seconds) /
                               std::max(1, r.threads)));
    absl::StrAppend(
        &out, ", \"lookups_per_cpu_second\": ", JsonNumber(PerCpuSecond(r)));
    absl::StrAppend(&out, ", \"table_entries\": ", r.table_entries,
                    ", \"table_bytes\": ", r.table_bytes);
  }
  const LatencyHistogram& h = r.latency;
  absl::StrAppend(
      &out, ", \"latency_us\": {\"count\": ", h.count(),
      ", \"min\": ", Micros(h.min()), ", \"p50\": ", Micros(h.Percentile(0.5)),
      ", \"p90\": ", Micros(h.Percentile(0.9)),
      ", \"p99\": ", Micros(h.Percentile(0.99)),
      ", \"p999\": ", Micros(h.Percentile(0.999)),
      ", \"max\": ", Micros(h.max()),
      ", \"mean\": ", absl::StrFormat("%.1f", h.Mean() / 1000.0), "}");
  absl::StrAppend(&out, ", \"errors_total\": ", r.ErrorsTotal());
  absl::StrAppend(&out, ", \"errors\": ", JsonMap(r.errors));
  absl::StrAppend(&out, ", \"client_actions\": ", JsonMap(r.client_actions));
  absl::StrAppend(
      &out, ", \"server_cpu_seconds\": ", JsonNumber(r.server_cpu_seconds));
  absl::StrAppend(&out, ", \"server_cpu_seconds_per_million_recipients\": ",
                  JsonNumber(CpuPerMillion(r)));
  absl::StrAppend(
      &out, ", \"client_cpu_seconds\": ", JsonNumber(r.client_cpu_seconds));
  absl::StrAppend(&out, "}\n");
  return out;
}

absl::StatusOr<double> ProcessCpuSeconds(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/stat");
  std::ifstream in(path);
  std::string stat;
  if (!in || !std::getline(in, stat))
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  // The command name (field 2) may hold spaces: fields restart after ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos)
    return absl::InternalError(absl::StrCat("unexpected ", path));
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(close + 2), ' ', absl::SkipEmpty());
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  if (fields.size() < 13)
    return absl::InternalError(absl::StrCat("short ", path));
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

double SelfCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6;
  };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

bool IsLocalGrpcTarget(const std::string& target) {
  if (absl::StartsWith(target, "unix:") ||
      absl::StartsWith(target, "unix-abstract:"))
    return true;
  // Several addresses (ipv4:a,b): every one must be local.
  if (absl::StrContains(target, ',')) return false;
  return IsLoopbackHost(GrpcTargetHost(target));
}

bool IsLocalLdapUri(const std::string& uri) {
  const std::string lower = absl::AsciiStrToLower(uri);
  if (absl::StartsWith(lower, "ldapi://")) return true;
  std::string rest;
  if (absl::StartsWith(lower, "ldap://")) {
    rest = uri.substr(7);
  } else if (absl::StartsWith(lower, "ldaps://")) {
    rest = uri.substr(8);
  } else {
    return false;
  }
  rest = rest.substr(0, rest.find('/'));
  if (rest.empty() || absl::StrContains(rest, ' ')) return false;
  return IsLocalGrpcTarget(rest.find(':') == std::string::npos ||
                                   (rest.front() == '[' && rest.back() == ']')
                               ? rest + ":389"
                               : rest);
}

}  // namespace rcptguard::bench
