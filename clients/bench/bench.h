// rcptguard-bench internals: the workload (which addresses to ask for and
// what the answer must be), the report every mode fills, and the modes.
//
// Modes:
//   unary, stream          drive a running rcptguardd over gRPC
//                          (grpc_load.cc: async completion queues)
//   grpc-floor             empty unary calls (health Check) to the same
//                          server: gRPC's own cost per call
//   ldap                   the Postfix-ldap-table baseline against slapd
//                          (ldap_load.cc: one connection per thread)
//   inprocess-hashset,     in-process floors (inprocess.cc): a
//   inprocess-directory,   flat_hash_set<std::string>, the real Directory,
//   random-access          and independent random reads over a table the
//                          size of the directory's slot arrays
//   client-unary,          through the C++ client library (client_load.cc):
//   client-stream,         what an edge pays per lookup, library included;
//   client-batch           client-batch groups concurrent callers' requests
//                          (ValidateBatchStream)
//
// Every mode is bounded by BenchOptions::duration and, when non-zero,
// max_requests; none of them runs without a bound.
//
// Thread safety: the Run* functions start and join their own threads; each
// thread owns its counters and histogram, merged after the join, so no
// state is shared between threads but a few atomics (documented where
// declared).
#ifndef RCPTGUARD_CLIENTS_BENCH_BENCH_H_
#define RCPTGUARD_CLIENTS_BENCH_BENCH_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "clients/bench/histogram.h"

namespace rcptguard::bench {

enum class Mode {
  kUnary,
  kStream,
  kGrpcFloor,
  kLdap,
  kInprocessHashset,
  kInprocessDirectory,
  kRandomAccess,
  kClientUnary,   // the C++ client library (client_load.cc), Transport::kUnary
  kClientStream,  // ... Transport::kStream
  kClientBatch,   // ... Transport::kBatchStream (group commit)
};

absl::StatusOr<Mode> ParseMode(const std::string& text);
const char* ModeName(Mode mode);

struct BenchOptions {
  Mode mode = Mode::kUnary;
  // gRPC target (unary, stream).
  std::string target = "127.0.0.1:50051";
  // Recipients per request (gRPC); lookups per LookupBatch call and per
  // prefetch group (in-process).
  int batch = 10;
  // Requests in flight (gRPC: calls or streams; ldap: threads, each with
  // its own connection).
  int concurrency = 16;
  // Separate gRPC channels (each its own subchannel and TCP connection).
  int connections = 1;
  // ValidateStream messages in flight per stream (1: ping-pong; more:
  // pipelined, answers still checked in order).
  int stream_depth = 1;
  // Threads polling completion queues (gRPC).
  int client_threads = 2;
  // Threads of the in-process modes (lookups/s per core divides by this).
  int threads = 1;
  // Share of recipients, in [0, 1], that must be unknown.
  double unknown_share = 0.1;
  // Distinct client IPs the requests rotate through.
  int client_ips = 1;
  // False: requests are dry_run (no harvest counters fed).
  bool feed_harvest = false;
  absl::Duration duration = absl::Seconds(10);
  // Stop after this many requests (0: only the duration bounds the run).
  uint64_t max_requests = 0;
  // Per-call deadline (unary, ldap).
  absl::Duration deadline = absl::Seconds(5);
  // rcptguardd's PID for CPU seconds from /proc (0: not measured).
  pid_t server_pid = 0;
  std::string ldap_uri;
  std::string ldap_base = "dc=example,dc=com";
  uint64_t seed = 1;
};

// The addresses known to exist, and the domains to generate unknown ones in.
struct Workload {
  std::vector<std::string> valid;
  // Distinct domains of `valid`, in first-seen order.
  std::vector<std::string> domains;
};

// One address per line ('#' comments and blank lines skipped, surrounding
// whitespace trimmed). NotFound / InvalidArgument (no address, a line
// without '@').
absl::StatusOr<Workload> LoadWorkload(const std::string& path);
// user<i>@<domain> for i in [0, n): what tests/bench/compare.sh's LDIF holds.
Workload GenerateWorkload(uint64_t n, const std::string& domain);

// Draws recipients: valid ones uniformly from the workload, unknown ones
// (with probability unknown_share) as "rg-bench-unknown-<stream>-<n>@<domain>"
// over the workload's domains, never repeating within a stream. Not
// thread-safe: one per thread, distinct `stream` numbers.
class QueryGenerator {
 public:
  QueryGenerator(const Workload& workload, double unknown_share, uint64_t seed,
                 uint64_t stream);
  // Writes the next recipient to *address; returns whether it must be valid.
  bool Next(std::string* address);

 private:
  const Workload& workload_;
  std::mt19937_64 rng_;
  std::uniform_int_distribution<size_t> pick_valid_;
  std::bernoulli_distribution unknown_;
  uint64_t stream_;
  uint64_t unknown_count_ = 0;
};

// What a run measured. Counters are totals over all threads.
struct Report {
  std::string mode;
  std::string target;
  int batch = 0;
  int concurrency = 0;
  int stream_depth = 0;  // stream mode only
  // client-stream / client-batch: requests per stream message (0: n/a).
  double requests_per_message = 0;
  int connections = 0;
  int client_threads = 0;
  int threads = 0;
  double seconds = 0;
  // RPCs (stream: messages; ldap: searches; in-process: batches) answered.
  uint64_t requests = 0;
  // Recipients answered and checked.
  uint64_t recipients = 0;
  // Per request, in nanoseconds (gRPC and ldap only).
  LatencyHistogram latency;
  // By kind: "rpc_<CODE>", "expected_valid_got_<STATUS>", ...
  std::map<std::string, uint64_t> errors;
  // Client (harvest) verdicts seen, by action name.
  std::map<std::string, uint64_t> client_actions;
  // < 0: not measured.
  double server_cpu_seconds = -1;
  double client_cpu_seconds = 0;
  // In-process modes: addresses in the table and its size in bytes.
  uint64_t table_entries = 0;
  uint64_t table_bytes = 0;

  uint64_t ErrorsTotal() const;
  void AddError(const std::string& kind, uint64_t n = 1) { errors[kind] += n; }
  // Merges counters, errors, actions and the histogram of another thread.
  void MergeCounts(const Report& other);
};

std::string FormatTable(const Report& report);
std::string FormatJson(const Report& report);

// utime + stime of `pid` from /proc/<pid>/stat, in seconds.
absl::StatusOr<double> ProcessCpuSeconds(pid_t pid);
// This process's user + system CPU seconds (getrusage).
double SelfCpuSeconds();

// Whether a gRPC target stays on this machine (unix: sockets, or one
// loopback host: IsLoopbackHost(GrpcTargetHost(target)), common/net.h).
bool IsLocalGrpcTarget(const std::string& target);
// ldap://host:port/ or ldapi://: whether it stays on this machine.
bool IsLocalLdapUri(const std::string& uri);

absl::StatusOr<Report> RunGrpc(const BenchOptions& options,
                               const Workload& workload);
absl::StatusOr<Report> RunClient(const BenchOptions& options,
                                 const Workload& workload);
absl::StatusOr<Report> RunLdap(const BenchOptions& options,
                               const Workload& workload);
absl::StatusOr<Report> RunInProcess(const BenchOptions& options,
                                    const Workload& workload);

}  // namespace rcptguard::bench

#endif  // RCPTGUARD_CLIENTS_BENCH_BENCH_H_
