// The LDAP baseline of rcptguard-bench: what Postfix's ldap table does per
// recipient, against slapd.
//
// `concurrency` threads each open their own connection (anonymous bind,
// LDAPv3) and run synchronous searches back to back, one per recipient:
// base `ldap_base`, subtree, filter (|(mail=%s)(proxyAddresses=smtp:%s))
// with the address escaped as RFC 4515 says, asking for the `mail`
// attribute. A recipient counts as found when the search returns at least
// one entry; the answer is checked against the workload's expectation.
#include <ldap.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/bench/bench.h"

namespace rcptguard::bench {
namespace {

using Clock = std::chrono::steady_clock;

// RFC 4515 value escaping.
std::string EscapeFilterValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c == '*' || c == '(' || c == ')' || c == '\\' || c == 0) {
      absl::StrAppend(&out, absl::StrFormat("\\%02x", c));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

struct LdapCloser {
  void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};

absl::StatusOr<std::unique_ptr<LDAP, LdapCloser>> Connect(
    const BenchOptions& o) {
  LDAP* raw = nullptr;
  int rc = ldap_initialize(&raw, o.ldap_uri.c_str());
  if (rc != LDAP_SUCCESS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ldap_initialize ", o.ldap_uri, ": ", ldap_err2string(rc)));
  }
  std::unique_ptr<LDAP, LdapCloser> ld(raw);
  const int version = LDAP_VERSION3;
  ldap_set_option(ld.get(), LDAP_OPT_PROTOCOL_VERSION, &version);
  ldap_set_option(ld.get(), LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  berval empty{0, nullptr};
  rc = ldap_sasl_bind_s(ld.get(), "", LDAP_SASL_SIMPLE, &empty, nullptr,
                        nullptr, nullptr);
  if (rc != LDAP_SUCCESS) {
    return absl::UnavailableError(
        absl::StrCat("bind to ", o.ldap_uri, ": ", ldap_err2string(rc)));
  }
  return ld;
}

// One thread's share of the run. `issued` is the shared request budget.
void RunThread(const BenchOptions& o, const Workload& w, int index,
               Clock::time_point end, std::atomic<uint64_t>* issued, LDAP* ld,
               Report* report) {
  QueryGenerator gen(w, o.unknown_share, o.seed, static_cast<uint64_t>(index));
  std::string address, filter;
  char mail[] = "mail";
  char* attrs[] = {mail, nullptr};
  timeval timeout{};
  timeout.tv_sec = absl::ToInt64Seconds(o.deadline);
  timeout.tv_usec = absl::ToInt64Microseconds(o.deadline) % 1000000;
  if (timeout.tv_sec == 0 && timeout.tv_usec == 0) timeout.tv_sec = 1;
  while (Clock::now() < end) {
    const uint64_t seq = issued->fetch_add(1, std::memory_order_relaxed);
    if (o.max_requests != 0 && seq >= o.max_requests) break;
    const bool want = gen.Next(&address);
    const std::string v = EscapeFilterValue(address);
    filter.clear();
    absl::StrAppend(&filter, "(|(mail=", v, ")(proxyAddresses=smtp:", v, "))");
    const Clock::time_point start = Clock::now();
    LDAPMessage* result = nullptr;
    const int rc = ldap_search_ext_s(ld, o.ldap_base.c_str(),
                                     LDAP_SCOPE_SUBTREE, filter.c_str(), attrs,
                                     0, nullptr, nullptr, &timeout, 0, &result);
    const uint64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            Clock::now() - start)
                            .count();
    if (rc != LDAP_SUCCESS) {
      report->AddError(absl::StrCat("ldap_", ldap_err2string(rc)));
      if (result != nullptr) ldap_msgfree(result);
      if (rc == LDAP_SERVER_DOWN) break;
      continue;
    }
    const bool found = ldap_count_entries(ld, result) > 0;
    ldap_msgfree(result);
    report->requests++;
    report->recipients++;
    report->latency.Record(ns);
    if (found != want) {
      report->AddError(want ? "expected_VALID_got_not_found"
                            : "expected_UNKNOWN_got_found");
    }
  }
}

}  // namespace

absl::StatusOr<Report> RunLdap(const BenchOptions& options,
                               const Workload& workload) {
  // Connect every thread's connection before the clock starts.
  std::vector<std::unique_ptr<LDAP, LdapCloser>> connections;
  for (int i = 0; i < options.concurrency; ++i) {
    absl::StatusOr<std::unique_ptr<LDAP, LdapCloser>> ld = Connect(options);
    if (!ld.ok()) return ld.status();
    connections.push_back(*std::move(ld));
  }
  std::vector<Report> per_thread(options.concurrency);
  std::atomic<uint64_t> issued{0};
  double server_cpu0 = -1;
  if (options.server_pid > 0) {
    absl::StatusOr<double> cpu = ProcessCpuSeconds(options.server_pid);
    if (!cpu.ok()) return cpu.status();
    server_cpu0 = *cpu;
  }
  const double client_cpu0 = SelfCpuSeconds();
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + absl::ToChronoNanoseconds(options.duration);
  std::vector<std::thread> threads;
  for (int i = 0; i < options.concurrency; ++i) {
    threads.emplace_back(RunThread, std::cref(options), std::cref(workload), i,
                         end, &issued, connections[i].get(), &per_thread[i]);
  }
  for (std::thread& t : threads) t.join();
  Report report;
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  report.client_cpu_seconds = SelfCpuSeconds() - client_cpu0;
  if (options.server_pid > 0) {
    absl::StatusOr<double> cpu = ProcessCpuSeconds(options.server_pid);
    if (!cpu.ok()) return cpu.status();
    report.server_cpu_seconds = *cpu - server_cpu0;
  }
  for (const Report& r : per_thread) report.MergeCounts(r);
  report.mode = ModeName(options.mode);
  report.target = options.ldap_uri;
  report.batch = 1;
  report.concurrency = options.concurrency;
  report.connections = options.concurrency;
  report.client_threads = options.concurrency;
  return report;
}

}  // namespace rcptguard::bench
