// What a Validate (validator.h) records in metrics: the request's size and
// edge, every recipient's status per served domain, the unknown recipients
// a MONITOR domain accepted, and the client verdict.
//
//   ValidationMetrics recorder(metrics);  // null: records nothing
//   recorder.RecordRecipients(request, edge_id, results, *response);
//   recorder.RecordClientVerdict(verdict.action, verdict.rule);
//
// Thread safety: immutable after construction; the ServerMetrics it points
// at is thread-safe itself. Nothing here allocates (metrics are registered
// at start-up, server/metrics/metrics.h).
#ifndef RCPTGUARD_SERVER_SERVICE_VALIDATION_METRICS_H_
#define RCPTGUARD_SERVER_SERVICE_VALIDATION_METRICS_H_

#include <string_view>

#include "absl/types/span.h"
#include "rcptguard/v1/validation.pb.h"
#include "server/directory/directory.h"
#include "server/harvest/harvest.h"
#include "server/metrics/metrics.h"

namespace rcptguard::service {

class ValidationMetrics {
 public:
  // `metrics` may be null (nothing is recorded); it must outlive this.
  explicit ValidationMetrics(metrics::ServerMetrics* metrics)
      : metrics_(metrics) {}

  // One answered request: `results` are its lookups and `response` its
  // verdicts, one per recipient in order. `edge_id` labels the edge.
  void RecordRecipients(const v1::ValidateRequest& request,
                        std::string_view edge_id,
                        absl::Span<const directory::LookupResult> results,
                        const v1::ValidateResponse& response) const;
  // The verdict on the client; `rule` is empty for ACCEPT.
  void RecordClientVerdict(harvest::Action action, std::string_view rule) const;

  bool enabled() const { return metrics_ != nullptr; }

 private:
  metrics::ServerMetrics* const metrics_;
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_VALIDATION_METRICS_H_
