// Prometheus metrics of rcptguardd. The HTTP endpoint that serves them is
// generic and lives apart (common/exposition/http_endpoint.h).
//
// ServerMetrics registers every metric once, at start-up (Create), into one
// struct of pointers; nothing on the request path creates a metric or calls
// prometheus-cpp's Family::Add (which locks and can throw). Every Record*
// method is a few atomic increments (histograms take prometheus-cpp's
// per-histogram mutex for one Observe), with fixed label sets:
//
//   RG_ASSIGN_OR_RETURN(std::unique_ptr<ServerMetrics> metrics,
//                       ServerMetrics::Create(
//                           {.domains = {"example.com", "example.org"},
//                            .rule_names = {"burst", "slow"},
//                            .version = "0.1.0"}));
//   RG_ASSIGN_OR_RETURN(std::unique_ptr<exposition::HttpEndpoint> http,
//                       exposition::StartHttpEndpoint(
//                           "127.0.0.1:9464", metrics->collectables()));
//   ...
//   metrics->RecordRequest(Method::kValidate, absl::StatusCode::kOk,
//                          absl::Now() - start);
//
// Labels are low-cardinality by construction, never an address or a client
// IP:
//   - domain: the served domains given at construction (at most
//     max_domain_labels of them, in config order); any other domain index,
//     including -1 (not a served domain, or none), is "other";
//   - rule: the harvest rule names given at construction; an empty rule
//     (ACCEPT) is "none", an unknown one "other";
//   - edge_id: the first max_edge_ids distinct non-empty ids seen (first
//     come, first served; kept for the life of the process); later ones are
//     "other"; an empty id is "none". An id is its own label when it is
//     printable ASCII without '%', at most 64 bytes, and neither "other" nor
//     "none". Otherwise it is escaped so that distinct ids keep distinct
//     labels and none can claim a reserved one: every other byte (controls,
//     '%', non-ASCII, invalid UTF-8) becomes %XX; "other" and "none" become
//     "%6Fther" and "%6Eone"; a label longer than 64 bytes is clipped to
//     (about) 64 and gets "~" and the 16 hex digits of the id's FNV-1a
//     64-bit hash;
//   - reason (reloads): empty, shrunk, missing_domain (refused); empty (a
//     0-byte snapshot file), truncated (a snapshot shorter than its header
//     says), checksum (any other corruption), key, format, io (failed);
//     anything else is "other"; successful and unchanged reloads have
//     reason "none".
//
// Gauges owned by other parts (harvest detector statistics) are read at
// scrape time through a sampler callback; the directory's age is computed at
// scrape time from its built_at; process metrics (process_cpu_seconds_total
// and friends) come from /proc at scrape time
// (common/exposition/process_collector.h).
//
// Metric names (the contract with deploy/prometheus and deploy/grafana):
//   rcptguard_build_info{version}                                   gauge 1
//   rcptguard_grpc_requests_total{method,code}                      counter
//   rcptguard_grpc_request_duration_seconds{method}                 histogram
//   rcptguard_recipients_per_request                                histogram
//   rcptguard_recipients_total{domain,status}                       counter
//   rcptguard_monitor_would_reject_total{domain}                    counter
//   rcptguard_client_verdicts_total{action,rule}                    counter
//   rcptguard_edge_requests_total{edge_id}                          counter
//   rcptguard_directory_reloads_total{result,reason}                counter
//   rcptguard_directory_load_duration_seconds                       histogram
//   rcptguard_directory_addresses, rcptguard_directory_domains      gauge
//   rcptguard_directory_info{version}                  gauge 1, once loaded
//   rcptguard_directory_last_load_success_timestamp_seconds  gauge, once loaded
//   rcptguard_directory_snapshot_age_seconds           gauge, once loaded
//   rcptguard_directory_alias_domain_addresses         gauge, once loaded
//   rcptguard_harvest_tracked_keys, rcptguard_harvest_tracked_keys_limit,
//   rcptguard_harvest_evictions_total, rcptguard_harvest_penalty_boxes_active,
//   rcptguard_harvest_domains_under_attack        with a harvest sampler set
//   rcptguard_harvest_shared_connected, _lag_seconds, _flushes_total,
//   _errors_total, _dropped_deltas_total, _queued_deltas, _reconnects_total,
//   _flush_duration_seconds (histogram)         with harvest.shared as well
//   process_cpu_seconds_total, process_resident_memory_bytes,
//   process_virtual_memory_bytes, process_open_fds, process_max_fds,
//   process_start_time_seconds
//
// Thread safety: after Create, every method of ServerMetrics may be called
// concurrently from any thread, and the collectables may be collected
// concurrently with them. A sampler passed to SetHarvestSampler is called on
// the scrape thread and must stay callable until it is replaced, or until
// the HttpEndpoint serving these collectables is destroyed.
#ifndef RCPTGUARD_SERVER_METRICS_METRICS_H_
#define RCPTGUARD_SERVER_METRICS_METRICS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace rcptguard::metrics {

// The gRPC methods rcptguardd serves (label `method`, the method's name).
enum class Method : uint8_t {
  kValidate = 0,
  kValidateStream = 1,
  kGetStatus = 2,
  kListOffenders = 3,
  kForgetClient = 4,
  kReload = 5,
  kGetServedDomains = 6,
};
inline constexpr size_t kMethodCount = 7;
std::string_view MethodName(Method method);

// Label `reason` of rcptguard_access_refused_total.
enum class AccessRefusal : uint8_t {
  kUnauthenticated = 0,   // no usable client certificate identity
  kPermissionDenied = 1,  // identity not listed for the call's role
  kRateLimited = 2,       // identity over its recipient budget
};
inline constexpr size_t kAccessRefusalCount = 3;

// Label `status` of rcptguard_recipients_total: valid, unknown, not_served,
// malformed (rcptguard.v1.RecipientStatus without the prefix).
enum class RecipientStatus : uint8_t {
  kValid = 0,
  kUnknown = 1,
  kNotServed = 2,
  kMalformed = 3,
};
inline constexpr size_t kRecipientStatusCount = 4;

// Label `action` of rcptguard_client_verdicts_total; the same order as
// harvest::Action, so static_cast between them is safe.
enum class ClientAction : uint8_t {
  kAccept = 0,
  kTarpit = 1,
  kTempfail = 2,
  kReject = 3,
};
inline constexpr size_t kClientActionCount = 4;

// Label `result` of rcptguard_directory_reloads_total: success (a new
// directory is served), unchanged (the candidate is the served one),
// refused (a guard kept the served one), failed (the source could not be
// read or verified).
enum class ReloadKind : uint8_t {
  kSuccess = 0,
  kUnchanged = 1,
  kRefused = 2,
  kFailed = 3,
};
inline constexpr size_t kReloadKindCount = 4;
// Values of the `reason` label of rcptguard_directory_reloads_total.
inline constexpr size_t kReloadReasonCount = 10;

struct MetricsOptions {
  // Served domains in config order: RecordRecipient's domain_index indexes
  // this list. Only the first max_domain_labels get a label of their own.
  std::vector<std::string> domains;
  size_t max_domain_labels = 256;
  // Harvest rule names (config order); the only `rule` label values besides
  // "none" and "other".
  std::vector<std::string> rule_names;
  // Distinct edge_id label values kept before folding into "other".
  size_t max_edge_ids = 64;
  // rcptguard_build_info's version label.
  std::string version;
  // Export process_* metrics read from /proc at scrape time.
  bool process_metrics = true;
  // Root of the proc file system (tests point it at a fake one).
  std::string proc_root = "/proc";
  // The clock for the directory's age; null means RealClock::Get(). Must
  // outlive the ServerMetrics.
  const Clock* clock = nullptr;
};

// What SetDirectory reports about the served directory.
struct DirectoryState {
  std::string version;
  uint64_t addresses = 0;
  uint64_t domains = 0;
  absl::Time built_at = absl::InfinitePast();   // when its source was read
  absl::Time loaded_at = absl::InfinitePast();  // when this process loaded it
  // Addresses the source wrote with an alias domain (directory.h,
  // AliasDomainAddresses), over every alias.
  uint64_t alias_domain_addresses = 0;
};

// Harvest detector statistics, read at scrape time (harvest::DetectorStats).
struct HarvestSample {
  uint64_t tracked_keys = 0;
  uint64_t max_tracked_keys = 0;
  uint64_t evictions = 0;  // since start, monotonic
  uint64_t active_penalty_boxes = 0;
  uint64_t domains_under_attack = 0;
  // harvest.shared (docs/harvest-shared.md); absent: not configured.
  struct Shared {
    bool connected = false;
    double lag_seconds = 0;
    uint64_t flushes = 0;
    uint64_t errors = 0;
    uint64_t dropped_deltas = 0;
    uint64_t queued_deltas = 0;
    uint64_t reconnects = 0;
    // Flush latency: cumulative counts per upper bound, sum, count.
    std::vector<std::pair<double, uint64_t>> flush_buckets;
    double flush_seconds_sum = 0;
    uint64_t flush_count = 0;
  };
  std::optional<Shared> shared = std::nullopt;
};

class ScrapeCollector;  // metrics.cc

class ServerMetrics {
 public:
  // Registers every metric into `registry` (a new one when null). Errors:
  // InvalidArgument when prometheus-cpp refuses a name or label (e.g. one
  // of ours is already registered in `registry` as another metric type).
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(
      MetricsOptions options,
      std::shared_ptr<prometheus::Registry> registry = nullptr);

  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;
  ~ServerMetrics();

  // Everything to expose, for exposition::StartHttpEndpoint: the registry,
  // the scrape-time collector, and the process collector (when enabled).
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables() const;
  const std::shared_ptr<prometheus::Registry>& registry() const {
    return registry_;
  }

  // ---- Request path: each call is a handful of atomic operations. ----

  // One finished call (a whole unary call, or one message of a
  // ValidateStream). `code` is the gRPC status code; absl::StatusCode has
  // the same values, so static_cast<absl::StatusCode>(grpc_code) is fine.
  void RecordRequest(Method method, absl::StatusCode code,
                     absl::Duration latency);
  // Recipients in one ValidateRequest.
  void RecordRecipientsPerRequest(size_t recipients);
  // `count` recipients answered `status` for served domain `domain_index`
  // (-1 when the domain is not served or unparsable).
  void RecordRecipient(RecipientStatus status, int domain_index,
                       uint64_t count = 1);
  // Unknown recipients of a MONITOR-mode domain that were accepted but
  // would have been rejected in ENFORCE mode.
  void RecordMonitorWouldReject(int domain_index, uint64_t count = 1);
  // One client verdict; `rule` is the rule that decided (empty for ACCEPT).
  void RecordClientVerdict(ClientAction action, std::string_view rule);
  // One request from `edge_id`. Known ids cost a lock-free hash probe; only
  // a new id (at most max_edge_ids times per process) takes a mutex.
  void RecordEdgeRequest(std::string_view edge_id);
  // A call refused before it did anything.
  void RecordAccessRefused(AccessRefusal reason);

  // ---- Reload path (the loading thread). ----

  // One reload attempt and how long it took. `reason` is the refusal or
  // failure code (service::ReloadResult::reason); ignored for
  // success and unchanged.
  void RecordReload(ReloadKind result, std::string_view reason,
                    absl::Duration took);
  // The directory now served: after every successful swap (and the first
  // load). Replaces rcptguard_directory_info's version label.
  void SetDirectory(const DirectoryState& state);

  // ---- Start-up. ----

  // Sets (or, with nullptr, clears) the source of the rcptguard_harvest_*
  // metrics. Without one they are not exported (harvest detection off).
  void SetHarvestSampler(std::function<HarvestSample()> sampler);

 private:
  ServerMetrics(MetricsOptions options,
                std::shared_ptr<prometheus::Registry> registry);
  // Registers every family and metric; the only place prometheus-cpp may
  // throw, so the only place that catches.
  absl::Status Register();
  size_t DomainSlot(int domain_index) const;

  // Constant after construction.
  const MetricsOptions options_;
  const std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<ScrapeCollector> scrape_;
  std::shared_ptr<prometheus::Collectable> process_;
  size_t domain_labels_ = 0;  // labelled domains; slot domain_labels_ = other
  absl::flat_hash_map<std::string, size_t> rule_slots_;  // name -> slot
  size_t rule_other_ = 0;                                // slot of "other"
  size_t rule_none_ = 0;                                 // slot of "none"

  // Metrics, registered once by Register(); the pointees are owned by
  // registry_ and live as long as it does.
  std::array<std::array<prometheus::Counter*, 17>, kMethodCount> requests_{};
  std::array<prometheus::Histogram*, kMethodCount> latency_{};
  prometheus::Histogram* recipients_per_request_ = nullptr;
  std::array<prometheus::Counter*, kAccessRefusalCount> access_refused_{};
  // [domain slot][status]
  std::vector<std::array<prometheus::Counter*, kRecipientStatusCount>>
      recipients_;
  std::vector<prometheus::Counter*> would_reject_;  // [domain slot]
  // [action][rule slot]
  std::array<std::vector<prometheus::Counter*>, kClientActionCount> verdicts_;
  // [result][reason]; null for combinations that fold into "other".
  std::array<std::array<prometheus::Counter*, kReloadReasonCount>,
             kReloadKindCount>
      reloads_{};
  prometheus::Histogram* load_duration_ = nullptr;
};

// Request latency buckets (seconds): 50 µs .. 5 s.
prometheus::Histogram::BucketBoundaries LatencyBuckets();
// Recipients per request buckets: 1 .. 1000.
prometheus::Histogram::BucketBoundaries RecipientBuckets();

// Collects every collectable and renders Prometheus text format 0.0.4.
std::string SerializeText(
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables);

}  // namespace rcptguard::metrics

#endif  // RCPTGUARD_SERVER_METRICS_METRICS_H_
