#include "server/metrics/metrics.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/exposition/process_collector.h"
#include "common/strings.h"
#include "prometheus/text_serializer.h"

namespace rcptguard::metrics {
namespace {

constexpr std::string_view kMethodNames[kMethodCount] = {
    "Validate",     "ValidateStream", "GetStatus",       "ListOffenders",
    "ForgetClient", "Reload",         "GetServedDomains"};
constexpr std::string_view kRecipientStatusNames[kRecipientStatusCount] = {
    "valid", "unknown", "not_served", "malformed"};
constexpr std::string_view kActionNames[kClientActionCount] = {
    "accept", "tarpit", "tempfail", "reject"};
constexpr std::string_view kReloadKindNames[kReloadKindCount] = {
    "success", "unchanged", "refused", "failed"};
// Reload reasons; index 0 is for success and unchanged, the last is the
// fold-over value.
constexpr std::string_view kReloadReasons[kReloadReasonCount] = {
    "none", "empty",  "shrunk", "missing_domain", "checksum",
    "key",  "format", "io",     "truncated",      "other"};
constexpr size_t kReasonNone = 0;
constexpr size_t kReasonEmpty = 1;
constexpr size_t kReasonOther = kReloadReasonCount - 1;
constexpr int kGrpcCodeCount = 17;  // OK .. UNAUTHENTICATED

// Which (result, reason) pairs get a series of their own.
bool ReasonApplies(ReloadKind result, size_t reason) {
  switch (result) {
    case ReloadKind::kSuccess:
    case ReloadKind::kUnchanged:
      return reason == kReasonNone;
    case ReloadKind::kRefused:
      return reason >= 1 && (reason <= 3 || reason == kReasonOther);
    case ReloadKind::kFailed:
      // An empty snapshot file fails to load ("empty", as a refused empty
      // directory is); a truncated one is "truncated", not "checksum".
      return reason == kReasonEmpty || reason >= 4;
  }
  return false;
}

// The edge_id label values of the overflow and missing-id series. No
// identity's label can equal them (EdgeLabel).
constexpr std::string_view kEdgeOther = "other";
constexpr std::string_view kEdgeNone = "none";
// Longest edge_id label kept whole; longer ones are clipped (EdgeLabel).
constexpr size_t kMaxEdgeLabelLength = 64;

// FNV-1a, 64 bits: stable across processes and builds, so a clipped label
// names the same edge after a restart (absl::Hash is seeded per process).
uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// The edge_id label of a non-empty identity: printable ASCII except '%'
// is kept, every other byte (controls, '%', anything >= 0x80, so invalid
// UTF-8 too) becomes %XX; an identity whose encoding would be "other" or
// "none" gets its first byte encoded ("%6Fther", "%6Eone"). Percent-encoding
// is one-to-one, so distinct identities get distinct labels of at most 64
// bytes. A longer encoding is clipped to its first 64 bytes (less when that
// would split a %XX) plus "~" and the 16 hex digits of the identity's
// FNV-1a hash: at least 79 bytes, so it cannot equal an unclipped label;
// two long identities share a label only if their first ~62 bytes and
// hashes agree (EdgeTable folds such a late-comer into "other").
std::string EdgeLabel(std::string_view id) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string label;
  label.reserve(id.size());
  for (unsigned char c : id) {
    if (c >= 0x20 && c <= 0x7e && c != '%') {
      label.push_back(static_cast<char>(c));
    } else {
      label.push_back('%');
      label.push_back(kHex[c >> 4]);
      label.push_back(kHex[c & 0xf]);
    }
  }
  if (label == kEdgeOther || label == kEdgeNone) {
    const unsigned char first = static_cast<unsigned char>(label[0]);
    label.replace(0, 1, {'%', kHex[first >> 4], kHex[first & 0xf]});
  }
  if (label.size() > kMaxEdgeLabelLength) {
    size_t keep = kMaxEdgeLabelLength;
    // Back off to the start of a %XX escape that would be split.
    if (label[keep - 1] == '%') {
      keep -= 1;
    } else if (label[keep - 2] == '%') {
      keep -= 2;
    }
    label.resize(keep);
    const uint64_t hash = Fnv1a64(id);
    label.push_back('~');
    for (int shift = 60; shift >= 0; shift -= 4) {
      label.push_back(kHex[(hash >> shift) & 0xf]);
    }
  }
  return label;
}

prometheus::MetricFamily Family(std::string name, std::string help,
                                prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void AddSample(prometheus::MetricFamily* family, double value,
               std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  if (family->type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family->metric.push_back(std::move(metric));
}

}  // namespace

std::string_view MethodName(Method method) {
  const size_t i = static_cast<size_t>(method);
  return i < kMethodCount ? kMethodNames[i] : "unknown";
}

// Request counts per edge_id: an insert-only open-addressing table of at
// most `max_edges` entries with lock-free readers. A known id costs one hash
// and a probe of acquire loads; an unknown one takes mu_ once to claim a
// slot (at most max_edges times per process), after which every miss goes
// to "other" without locking. Entries are never removed or moved, so a
// reader that finds an empty slot may only have missed an insert racing
// with it, which the slow path re-checks under mu_. Each entry's label is
// EdgeLabel(id), computed once on insert; an id whose label another entry
// already has (two long ids clipped alike) keeps a slot that counts into
// "other", so every series stays unique.
class EdgeTable {
 public:
  explicit EdgeTable(size_t max_edges) : max_edges_(max_edges) {
    size_t capacity = 8;
    while (capacity < 2 * max_edges_) capacity *= 2;
    mask_ = capacity - 1;
    slots_ = std::make_unique<std::atomic<Entry*>[]>(capacity);
    for (size_t i = 0; i < capacity; ++i) {
      slots_[i].store(nullptr, std::memory_order_relaxed);
    }
    full_.store(max_edges_ == 0, std::memory_order_relaxed);
  }

  void Increment(std::string_view id) {
    if (id.empty()) {
      none_.count.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const size_t hash = absl::Hash<absl::string_view>{}(ToAbsl(id));
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      Entry* entry = slots_[i].load(std::memory_order_acquire);
      if (entry == nullptr) break;
      if (entry->name == id) {
        entry->counter->fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    if (full_.load(std::memory_order_relaxed)) {
      other_.count.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    Insert(id, hash)->counter->fetch_add(1, std::memory_order_relaxed);
  }

  void AppendTo(prometheus::MetricFamily* family) const {
    for (size_t i = 0; i <= mask_; ++i) {
      const Entry* entry = slots_[i].load(std::memory_order_acquire);
      if (entry == nullptr || entry->counter != &entry->count) continue;
      AddSample(
          family,
          static_cast<double>(entry->count.load(std::memory_order_relaxed)),
          {{"edge_id", entry->label}});
    }
    AddSample(family,
              static_cast<double>(other_.count.load(std::memory_order_relaxed)),
              {{"edge_id", std::string(kEdgeOther)}});
    AddSample(family,
              static_cast<double>(none_.count.load(std::memory_order_relaxed)),
              {{"edge_id", std::string(kEdgeNone)}});
  }

 private:
  struct Entry {
    std::string name;   // the identity as recorded
    std::string label;  // EdgeLabel(name)
    std::atomic<uint64_t> count{0};
    // Where this id's requests are counted: &count, or &other_.count for an
    // id whose label was taken. Constant once the entry is published.
    std::atomic<uint64_t>* counter = &count;
  };

  // Returns the entry for `id`, claiming a slot if there is room, else
  // other_.
  Entry* Insert(std::string_view id, size_t hash) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    size_t i = hash & mask_;
    for (;; i = (i + 1) & mask_) {
      Entry* entry = slots_[i].load(std::memory_order_acquire);
      if (entry == nullptr) break;
      if (entry->name == id) return entry;
    }
    if (entries_.size() >= max_edges_) return &other_;
    auto entry = std::make_unique<Entry>();
    entry->name = std::string(id);
    entry->label = EdgeLabel(id);
    if (!labels_.insert(entry->label).second) entry->counter = &other_.count;
    Entry* raw = entry.get();
    entries_.push_back(std::move(entry));
    // The table is at most half full, so slot i is free and probing ends.
    slots_[i].store(raw, std::memory_order_release);
    if (entries_.size() >= max_edges_) {
      full_.store(true, std::memory_order_relaxed);
    }
    return raw;
  }

  // Constant after construction.
  const size_t max_edges_;
  size_t mask_ = 0;
  std::unique_ptr<std::atomic<Entry*>[]> slots_;

  std::atomic<bool> full_{false};
  Entry other_;
  Entry none_;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> labels_ ABSL_GUARDED_BY(mu_);
};

// The metrics computed or read at scrape time: directory state and age,
// harvest detector statistics, per-edge request counts.
class ScrapeCollector : public prometheus::Collectable {
 public:
  ScrapeCollector(size_t max_edges, const Clock* clock)
      : clock_(clock != nullptr ? clock : RealClock::Get()),
        edges_(max_edges) {}

  EdgeTable& edges() { return edges_; }

  void SetDirectory(const DirectoryState& state) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    directory_ = state;
    loaded_ = true;
  }

  void SetHarvestSampler(std::function<HarvestSample()> sampler)
      ABSL_LOCKS_EXCLUDED(mu_) {
    auto shared = sampler
                      ? std::make_shared<const std::function<HarvestSample()>>(
                            std::move(sampler))
                      : nullptr;
    absl::MutexLock lock(&mu_);
    sampler_ = std::move(shared);
  }

  std::vector<prometheus::MetricFamily> Collect() const override
      ABSL_LOCKS_EXCLUDED(mu_) {
    using prometheus::MetricType;
    DirectoryState directory;
    bool loaded;
    std::shared_ptr<const std::function<HarvestSample()>> sampler;
    {
      absl::MutexLock lock(&mu_);
      directory = directory_;
      loaded = loaded_;
      sampler = sampler_;
    }
    std::vector<prometheus::MetricFamily> families;

    auto addresses =
        Family("rcptguard_directory_addresses",
               "Addresses in the served directory (0 before the first load).",
               MetricType::Gauge);
    AddSample(&addresses, static_cast<double>(directory.addresses));
    families.push_back(std::move(addresses));
    auto domains =
        Family("rcptguard_directory_domains",
               "Domains in the served directory.", MetricType::Gauge);
    AddSample(&domains, static_cast<double>(directory.domains));
    families.push_back(std::move(domains));
    if (loaded) {
      auto info = Family("rcptguard_directory_info",
                         "The served directory; value 1, its version as label.",
                         MetricType::Gauge);
      AddSample(&info, 1, {{"version", directory.version}});
      families.push_back(std::move(info));
      auto alias =
          Family("rcptguard_directory_alias_domain_addresses",
                 "Addresses the directory source wrote with an alias domain "
                 "(folded into the target domain; see the load log line).",
                 MetricType::Gauge);
      AddSample(&alias, static_cast<double>(directory.alias_domain_addresses));
      families.push_back(std::move(alias));
      if (directory.loaded_at != absl::InfinitePast() &&
          directory.loaded_at != absl::InfiniteFuture()) {
        auto loaded_at = Family(
            "rcptguard_directory_last_load_success_timestamp_seconds",
            "Unix time the served directory was loaded.", MetricType::Gauge);
        AddSample(&loaded_at, absl::ToDoubleSeconds(directory.loaded_at -
                                                    absl::UnixEpoch()));
        families.push_back(std::move(loaded_at));
      }
      if (directory.built_at != absl::InfinitePast() &&
          directory.built_at != absl::InfiniteFuture()) {
        auto age = Family("rcptguard_directory_snapshot_age_seconds",
                          "Seconds since the served directory's source was "
                          "read (its built_at).",
                          MetricType::Gauge);
        AddSample(&age, std::max(0.0, absl::ToDoubleSeconds(
                                          clock_->Now() - directory.built_at)));
        families.push_back(std::move(age));
      }
    }

    if (sampler != nullptr) {
      const HarvestSample s = (*sampler)();
      auto gauge = [&](const char* name, const char* help, uint64_t value,
                       MetricType type = MetricType::Gauge) {
        auto family = Family(name, help, type);
        AddSample(&family, static_cast<double>(value));
        families.push_back(std::move(family));
      };
      gauge("rcptguard_harvest_tracked_keys",
            "Client keys (addresses and prefixes) with harvest windows.",
            s.tracked_keys);
      gauge("rcptguard_harvest_tracked_keys_limit",
            "Most client keys tracked before the oldest are evicted.",
            s.max_tracked_keys);
      gauge("rcptguard_harvest_evictions_total",
            "Client keys evicted to stay within the tracked-keys limit.",
            s.evictions, MetricType::Counter);
      gauge("rcptguard_harvest_penalty_boxes_active",
            "Client keys in an enforced penalty box.", s.active_penalty_boxes);
      gauge("rcptguard_harvest_domains_under_attack",
            "Served domains whose unknown-recipient rate is above the "
            "attack threshold.",
            s.domains_under_attack);
      if (s.shared.has_value()) {
        const HarvestSample::Shared& sh = *s.shared;
        gauge("rcptguard_harvest_shared_connected",
              "1 while this replica exchanges harvest state with Redis.",
              sh.connected ? 1 : 0);
        auto lag = Family("rcptguard_harvest_shared_lag_seconds",
                          "Seconds since the last complete exchange of "
                          "harvest state with Redis.",
                          MetricType::Gauge);
        AddSample(&lag, sh.lag_seconds);
        families.push_back(std::move(lag));
        gauge("rcptguard_harvest_shared_flushes_total",
              "Complete exchanges of harvest state with Redis.", sh.flushes,
              MetricType::Counter);
        gauge("rcptguard_harvest_shared_errors_total",
              "Redis errors: error replies, timeouts, lost connections.",
              sh.errors, MetricType::Counter);
        gauge("rcptguard_harvest_shared_dropped_deltas_total",
              "Key deltas never applied to Redis (queue bound, lost in "
              "flight).",
              sh.dropped_deltas, MetricType::Counter);
        gauge("rcptguard_harvest_shared_queued_deltas",
              "Key deltas waiting to be sent to Redis.", sh.queued_deltas);
        gauge("rcptguard_harvest_shared_reconnects_total",
              "Connection attempts to Redis after the first.", sh.reconnects,
              MetricType::Counter);
        auto flush = Family("rcptguard_harvest_shared_flush_duration_seconds",
                            "Time of one exchange with Redis (deltas out, "
                            "global state back).",
                            MetricType::Histogram);
        prometheus::ClientMetric m;
        for (const auto& [bound, count] : sh.flush_buckets) {
          prometheus::ClientMetric::Bucket b;
          b.upper_bound = bound;
          b.cumulative_count = count;
          m.histogram.bucket.push_back(b);
        }
        prometheus::ClientMetric::Bucket inf;
        inf.upper_bound = std::numeric_limits<double>::infinity();
        inf.cumulative_count = sh.flush_count;
        m.histogram.bucket.push_back(inf);
        m.histogram.sample_count = sh.flush_count;
        m.histogram.sample_sum = sh.flush_seconds_sum;
        flush.metric.push_back(std::move(m));
        families.push_back(std::move(flush));
      }
    }

    auto edges = Family("rcptguard_edge_requests_total",
                        "Validate requests by edge_id (the first edges seen "
                        "get a label; the rest are \"other\").",
                        MetricType::Counter);
    edges_.AppendTo(&edges);
    families.push_back(std::move(edges));
    return families;
  }

 private:
  // Constant after construction.
  const Clock* const clock_;

  // Lock-free for readers; see EdgeTable.
  EdgeTable edges_;

  mutable absl::Mutex mu_;
  DirectoryState directory_ ABSL_GUARDED_BY(mu_);
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<const std::function<HarvestSample()>> sampler_
      ABSL_GUARDED_BY(mu_);
};

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
          0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
}

prometheus::Histogram::BucketBoundaries RecipientBuckets() {
  return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
}

prometheus::Histogram::BucketBoundaries LoadDurationBuckets() {
  return {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
}

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(
    MetricsOptions options, std::shared_ptr<prometheus::Registry> registry) {
  if (registry == nullptr) registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<ServerMetrics> metrics(
      new ServerMetrics(std::move(options), std::move(registry)));
  if (absl::Status status = metrics->Register(); !status.ok()) return status;
  return metrics;
}

ServerMetrics::ServerMetrics(MetricsOptions options,
                             std::shared_ptr<prometheus::Registry> registry)
    : options_(std::move(options)), registry_(std::move(registry)) {
  scrape_ =
      std::make_shared<ScrapeCollector>(options_.max_edge_ids, options_.clock);
  if (options_.process_metrics) {
    process_ =
        std::make_shared<exposition::ProcessCollector>(options_.proc_root);
  }
  domain_labels_ =
      std::min(options_.domains.size(), options_.max_domain_labels);
  for (size_t i = 0; i < options_.rule_names.size(); ++i) {
    rule_slots_.try_emplace(options_.rule_names[i], i);
  }
  rule_other_ = options_.rule_names.size();
  rule_none_ = rule_other_ + 1;
}

ServerMetrics::~ServerMetrics() = default;

std::vector<std::shared_ptr<prometheus::Collectable>>
ServerMetrics::collectables() const {
  std::vector<std::shared_ptr<prometheus::Collectable>> all = {registry_,
                                                               scrape_};
  if (process_ != nullptr) all.push_back(process_);
  return all;
}

absl::Status ServerMetrics::Register() {
  try {
    prometheus::Registry& r = *registry_;
    prometheus::BuildGauge()
        .Name("rcptguard_build_info")
        .Help("rcptguardd build; value 1, its version as label.")
        .Register(r)
        .Add({{"version", options_.version}})
        .Set(1);

    auto& requests =
        prometheus::BuildCounter()
            .Name("rcptguard_grpc_requests_total")
            .Help(
                "gRPC calls (ValidateStream: messages) by method and status "
                "code.")
            .Register(r);
    auto& latency =
        prometheus::BuildHistogram()
            .Name("rcptguard_grpc_request_duration_seconds")
            .Help(
                "gRPC call (ValidateStream: message) handling time in "
                "seconds.")
            .Register(r);
    for (size_t m = 0; m < kMethodCount; ++m) {
      const std::string method(kMethodNames[m]);
      for (int c = 0; c < kGrpcCodeCount; ++c) {
        requests_[m][c] = &requests.Add(
            {{"method", method},
             {"code",
              absl::StatusCodeToString(static_cast<absl::StatusCode>(c))}});
      }
      latency_[m] = &latency.Add({{"method", method}}, LatencyBuckets());
    }

    recipients_per_request_ = &prometheus::BuildHistogram()
                                   .Name("rcptguard_recipients_per_request")
                                   .Help("Recipients in one ValidateRequest.")
                                   .Register(r)
                                   .Add({}, RecipientBuckets());

    auto& refused =
        prometheus::BuildCounter()
            .Name("rcptguard_access_refused_total")
            .Help(
                "Calls refused before doing anything: no client "
                "certificate identity, identity not allowed the call, or "
                "identity over its recipient budget.")
            .Register(r);
    constexpr std::array<const char*, kAccessRefusalCount> kRefusalNames = {
        "unauthenticated", "permission_denied", "rate_limited"};
    for (size_t i = 0; i < kAccessRefusalCount; ++i) {
      access_refused_[i] = &refused.Add({{"reason", kRefusalNames[i]}});
    }

    auto& recipients = prometheus::BuildCounter()
                           .Name("rcptguard_recipients_total")
                           .Help(
                               "Recipient verdicts by served domain (others: "
                               "\"other\") and status.")
                           .Register(r);
    auto& would_reject =
        prometheus::BuildCounter()
            .Name("rcptguard_monitor_would_reject_total")
            .Help(
                "Unknown recipients of MONITOR-mode domains that were "
                "accepted but would have been rejected.")
            .Register(r);
    recipients_.resize(domain_labels_ + 1);
    would_reject_.resize(domain_labels_ + 1);
    for (size_t d = 0; d <= domain_labels_; ++d) {
      const std::string domain =
          d < domain_labels_ ? options_.domains[d] : "other";
      for (size_t s = 0; s < kRecipientStatusCount; ++s) {
        recipients_[d][s] = &recipients.Add(
            {{"domain", domain},
             {"status", std::string(kRecipientStatusNames[s])}});
      }
      would_reject_[d] = &would_reject.Add({{"domain", domain}});
    }

    auto& verdicts = prometheus::BuildCounter()
                         .Name("rcptguard_client_verdicts_total")
                         .Help(
                             "Client (harvest) verdicts by action and the "
                             "rule that decided.")
                         .Register(r);
    for (size_t a = 0; a < kClientActionCount; ++a) {
      verdicts_[a].resize(rule_none_ + 1);
      for (size_t k = 0; k <= rule_none_; ++k) {
        const std::string rule = k < rule_other_    ? options_.rule_names[k]
                                 : k == rule_other_ ? "other"
                                                    : "none";
        verdicts_[a][k] = &verdicts.Add(
            {{"action", std::string(kActionNames[a])}, {"rule", rule}});
      }
    }

    auto& reloads = prometheus::BuildCounter()
                        .Name("rcptguard_directory_reloads_total")
                        .Help(
                            "Directory reload attempts by result and "
                            "refusal or failure reason.")
                        .Register(r);
    for (size_t res = 0; res < kReloadKindCount; ++res) {
      for (size_t reason = 0; reason < std::size(kReloadReasons); ++reason) {
        if (!ReasonApplies(static_cast<ReloadKind>(res), reason)) continue;
        reloads_[res][reason] =
            &reloads.Add({{"result", std::string(kReloadKindNames[res])},
                          {"reason", std::string(kReloadReasons[reason])}});
      }
    }
    load_duration_ = &prometheus::BuildHistogram()
                          .Name("rcptguard_directory_load_duration_seconds")
                          .Help(
                              "Time to load and check one directory "
                              "candidate, in seconds.")
                          .Register(r)
                          .Add({}, LoadDurationBuckets());
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot register metrics: ", e.what()));
  }
  return absl::OkStatus();
}

size_t ServerMetrics::DomainSlot(int domain_index) const {
  return domain_index >= 0 && static_cast<size_t>(domain_index) < domain_labels_
             ? static_cast<size_t>(domain_index)
             : domain_labels_;
}

void ServerMetrics::RecordRequest(Method method, absl::StatusCode code,
                                  absl::Duration latency) {
  const size_t m = static_cast<size_t>(method);
  if (m >= kMethodCount) return;
  int c = static_cast<int>(code);
  if (c < 0 || c >= kGrpcCodeCount)
    c = static_cast<int>(absl::StatusCode::kUnknown);
  requests_[m][c]->Increment();
  latency_[m]->Observe(absl::ToDoubleSeconds(latency));
}

void ServerMetrics::RecordRecipientsPerRequest(size_t recipients) {
  recipients_per_request_->Observe(static_cast<double>(recipients));
}

void ServerMetrics::RecordRecipient(RecipientStatus status, int domain_index,
                                    uint64_t count) {
  const size_t s = static_cast<size_t>(status);
  if (s >= kRecipientStatusCount || count == 0) return;
  recipients_[DomainSlot(domain_index)][s]->Increment(
      static_cast<double>(count));
}

void ServerMetrics::RecordMonitorWouldReject(int domain_index, uint64_t count) {
  if (count == 0) return;
  would_reject_[DomainSlot(domain_index)]->Increment(
      static_cast<double>(count));
}

void ServerMetrics::RecordClientVerdict(ClientAction action,
                                        std::string_view rule) {
  const size_t a = static_cast<size_t>(action);
  if (a >= kClientActionCount) return;
  size_t slot = rule_none_;
  if (!rule.empty()) {
    auto it = rule_slots_.find(ToAbsl(rule));
    slot = it != rule_slots_.end() ? it->second : rule_other_;
  }
  verdicts_[a][slot]->Increment();
}

void ServerMetrics::RecordEdgeRequest(std::string_view edge_id) {
  scrape_->edges().Increment(edge_id);
}

void ServerMetrics::RecordAccessRefused(AccessRefusal reason) {
  const size_t i = static_cast<size_t>(reason);
  if (i < kAccessRefusalCount) access_refused_[i]->Increment();
}

void ServerMetrics::RecordReload(ReloadKind result, std::string_view reason,
                                 absl::Duration took) {
  const size_t res = static_cast<size_t>(result);
  if (res >= kReloadKindCount) return;
  size_t slot = kReasonOther;
  if (result == ReloadKind::kSuccess || result == ReloadKind::kUnchanged) {
    slot = kReasonNone;
  } else {
    for (size_t i = 1; i < std::size(kReloadReasons); ++i) {
      if (kReloadReasons[i] == reason) slot = i;
    }
    if (reloads_[res][slot] == nullptr) slot = kReasonOther;
  }
  reloads_[res][slot]->Increment();
  load_duration_->Observe(absl::ToDoubleSeconds(took));
}

void ServerMetrics::SetDirectory(const DirectoryState& state) {
  scrape_->SetDirectory(state);
}

void ServerMetrics::SetHarvestSampler(std::function<HarvestSample()> sampler) {
  scrape_->SetHarvestSampler(std::move(sampler));
}

std::string SerializeText(
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& collectable : collectables) {
    if (collectable == nullptr) continue;
    std::vector<prometheus::MetricFamily> more = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace rcptguard::metrics
