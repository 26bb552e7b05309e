// rcptguard-bench: load generator for rcptguardd and the baselines it is
// compared with (issue 8). See bench.h for the modes.
//
//   rcptguard-bench --mode=unary --target=127.0.0.1:50051 --batch=10
//       --concurrency=16 --connections=2 --generate=1000000
//       --unknown_share=0.1 --duration=10s --server_pid=$(cat rcptguardd.pid)
//   rcptguard-bench --mode=stream --batch=1 --addresses_file=valid.txt --json
//   rcptguard-bench --mode=ldap --ldap_uri=ldap://127.0.0.1:3890/
//       --ldap_base=dc=example,dc=com --generate=1000000 --concurrency=16
//   rcptguard-bench --mode=inprocess-directory --generate=10000000 --batch=64
//
// Valid addresses come from --addresses_file (one per line) or --generate=N
// (user<i>@<--domain> for i < N, as tests/bench/compare.sh's LDIF holds);
// --unknown_share of the recipients are made-up addresses in the same
// domains, which must come back UNKNOWN. Every answer is checked; a wrong
// one is an error. The exit status is 0 when the run had no error, 1 when it
// had errors, 2 for bad flags or a setup failure.
//
// Safety: gRPC and LDAP targets must be on this machine (127.0.0.0/8, ::1,
// localhost, unix sockets) unless --allow_remote; every run ends by itself
// (--duration, at most 1 hour, and --requests).
#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/bench/bench.h"
#include "common/flag_spelling.h"

ABSL_FLAG(std::string, mode, "unary",
          "unary, stream, grpc-floor (empty unary calls: grpc.health.v1 "
          "Check), ldap, inprocess-hashset, inprocess-directory, "
          "random-access, client-unary, client-stream or client-batch (the "
          "C++ client library with that transport).");
ABSL_FLAG(std::string, target, "127.0.0.1:50051", "rcptguardd address.");
ABSL_FLAG(int, batch, 10,
          "Recipients per request (gRPC); lookups per batch (in-process).");
ABSL_FLAG(int, concurrency, 16,
          "Requests in flight (gRPC calls or streams; LDAP connections).");
ABSL_FLAG(int, connections, 1, "Separate gRPC channels (TCP connections).");
ABSL_FLAG(int, stream_depth, 1,
          "ValidateStream messages in flight per stream (stream mode; 1: "
          "ping-pong, more: pipelined).");
ABSL_FLAG(int, client_threads, 2, "Completion-queue threads (gRPC).");
ABSL_FLAG(int, threads, 1, "Threads of the in-process modes.");
ABSL_FLAG(double, unknown_share, 0.1,
          "Share of recipients (0..1) that are made up and must be UNKNOWN.");
ABSL_FLAG(std::string, addresses_file, "", "Valid addresses, one per line.");
ABSL_FLAG(uint64_t, generate, 0,
          "Instead of --addresses_file: user<i>@<domain> for i < N.");
ABSL_FLAG(std::string, domain, "example.com", "Domain for --generate.");
ABSL_FLAG(int, client_ips, 1,
          "Distinct SMTP client IPs (10.x.y.z) the requests rotate through.");
ABSL_FLAG(bool, feed_harvest, false,
          "Send non-dry requests, which feed harvest detection (default: "
          "dry_run, so the bench does not get its clients penalized).");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          "How long to run (at most 1h).");
ABSL_FLAG(uint64_t, requests, 0,
          "Stop after this many requests (0: the duration alone bounds it).");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(5), "Per-call deadline.");
ABSL_FLAG(int, server_pid, 0,
          "PID of the server (rcptguardd or slapd) whose CPU seconds to "
          "report, from /proc/<pid>/stat.");
ABSL_FLAG(std::string, ldap_uri, "", "slapd URI (ldap mode).");
ABSL_FLAG(std::string, ldap_base, "dc=example,dc=com", "Search base (ldap).");
ABSL_FLAG(bool, allow_remote, false,
          "Allow targets that are not on this machine.");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the recipient choice.");
ABSL_FLAG(bool, json, false, "Print the report as one JSON object.");

namespace rcptguard::bench {
namespace {

absl::StatusOr<BenchOptions> OptionsFromFlags() {
  BenchOptions o;
  absl::StatusOr<Mode> mode = ParseMode(absl::GetFlag(FLAGS_mode));
  if (!mode.ok()) return mode.status();
  o.mode = *mode;
  o.target = absl::GetFlag(FLAGS_target);
  o.batch = absl::GetFlag(FLAGS_batch);
  o.concurrency = absl::GetFlag(FLAGS_concurrency);
  o.stream_depth = absl::GetFlag(FLAGS_stream_depth);
  o.connections = absl::GetFlag(FLAGS_connections);
  o.client_threads = absl::GetFlag(FLAGS_client_threads);
  o.threads = absl::GetFlag(FLAGS_threads);
  o.unknown_share = absl::GetFlag(FLAGS_unknown_share);
  o.client_ips = absl::GetFlag(FLAGS_client_ips);
  o.feed_harvest = absl::GetFlag(FLAGS_feed_harvest);
  o.duration = absl::GetFlag(FLAGS_duration);
  o.max_requests = absl::GetFlag(FLAGS_requests);
  o.deadline = absl::GetFlag(FLAGS_deadline);
  o.server_pid = absl::GetFlag(FLAGS_server_pid);
  o.ldap_uri = absl::GetFlag(FLAGS_ldap_uri);
  o.ldap_base = absl::GetFlag(FLAGS_ldap_base);
  o.seed = absl::GetFlag(FLAGS_seed);

  auto bad = [](auto... parts) {
    return absl::InvalidArgumentError(absl::StrCat(parts...));
  };
  if (o.batch < 1 || o.batch > 100000) return bad("--batch: 1..100000");
  if (o.stream_depth < 1 || o.stream_depth > 1024)
    return bad("--stream_depth: 1..1024");
  if (o.concurrency < 1 || o.concurrency > 4096)
    return bad("--concurrency: 1..4096");
  if (o.connections < 1 || o.connections > 1024)
    return bad("--connections: 1..1024");
  if (o.client_threads < 1 || o.client_threads > 256)
    return bad("--client_threads: 1..256");
  if (o.threads < 1 || o.threads > 256) return bad("--threads: 1..256");
  if (!(o.unknown_share >= 0 && o.unknown_share <= 1))
    return bad("--unknown_share: 0..1");
  if (o.client_ips < 1 || o.client_ips > (1 << 24))
    return bad("--client_ips: 1..16777216");
  if (o.duration <= absl::ZeroDuration() || o.duration > absl::Hours(1))
    return bad("--duration: more than 0, at most 1h");
  if (o.deadline <= absl::ZeroDuration()) return bad("--deadline: positive");
  const bool allow_remote = absl::GetFlag(FLAGS_allow_remote);
  if ((o.mode == Mode::kUnary || o.mode == Mode::kStream ||
       o.mode == Mode::kGrpcFloor || o.mode == Mode::kClientUnary ||
       o.mode == Mode::kClientStream || o.mode == Mode::kClientBatch) &&
      !allow_remote && !IsLocalGrpcTarget(o.target)) {
    return bad("--target ", o.target,
               " is not on this machine (127.0.0.1, ::1, localhost, unix:); "
               "pass --allow_remote to load another host");
  }
  if (o.mode == Mode::kLdap) {
    if (o.ldap_uri.empty()) return bad("--ldap_uri is required in ldap mode");
    if (!allow_remote && !IsLocalLdapUri(o.ldap_uri)) {
      return bad("--ldap_uri ", o.ldap_uri,
                 " is not on this machine; pass --allow_remote");
    }
  }
  return o;
}

int Main(int argc, char** argv) {
  AcceptDashedFlagNames(argc, argv);
  absl::SetProgramUsageMessage(
      "rcptguard-bench: load generator and baselines for rcptguardd "
      "(see clients/bench/main.cc).");
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<BenchOptions> options = OptionsFromFlags();
  if (!options.ok()) {
    std::fprintf(stderr, "rcptguard-bench: %s\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }
  Workload workload;
  const std::string file = absl::GetFlag(FLAGS_addresses_file);
  const uint64_t generate = absl::GetFlag(FLAGS_generate);
  if (!file.empty() && generate != 0) {
    std::fprintf(stderr,
                 "rcptguard-bench: --addresses_file and --generate exclude "
                 "each other\n");
    return 2;
  }
  if (!file.empty()) {
    absl::StatusOr<Workload> loaded = LoadWorkload(file);
    if (!loaded.ok()) {
      std::fprintf(stderr, "rcptguard-bench: %s\n",
                   std::string(loaded.status().message()).c_str());
      return 2;
    }
    workload = *std::move(loaded);
  } else if (generate != 0) {
    workload = GenerateWorkload(generate, absl::GetFlag(FLAGS_domain));
  } else {
    std::fprintf(stderr,
                 "rcptguard-bench: give --addresses_file or --generate\n");
    return 2;
  }

  absl::StatusOr<Report> report;
  switch (options->mode) {
    case Mode::kUnary:
    case Mode::kStream:
    case Mode::kGrpcFloor:
      report = RunGrpc(*options, workload);
      break;
    case Mode::kLdap:
      report = RunLdap(*options, workload);
      break;
    case Mode::kClientUnary:
    case Mode::kClientStream:
    case Mode::kClientBatch:
      report = RunClient(*options, workload);
      break;
    default:
      report = RunInProcess(*options, workload);
      break;
  }
  if (!report.ok()) {
    std::fprintf(stderr, "rcptguard-bench: %s\n",
                 report.status().ToString().c_str());
    return 2;
  }
  const std::string text =
      absl::GetFlag(FLAGS_json) ? FormatJson(*report) : FormatTable(*report);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return report->ErrorsTotal() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace rcptguard::bench

int main(int argc, char** argv) { return rcptguard::bench::Main(argc, argv); }
