#include "server/service/validation_metrics.h"

#include "server/service/metrics_enums.h"

namespace rcptguard::service {

void ValidationMetrics::RecordRecipients(
    const v1::ValidateRequest& request, std::string_view edge_id,
    absl::Span<const directory::LookupResult> results,
    const v1::ValidateResponse& response) const {
  if (metrics_ == nullptr) return;
  metrics_->RecordRecipientsPerRequest(request.recipients_size());
  metrics_->RecordEdgeRequest(edge_id);
  for (size_t i = 0; i < results.size(); ++i) {
    const directory::LookupResult& r = results[i];
    metrics_->RecordRecipient(ToMetricsRecipientStatus(r.status),
                              r.domain_index);
    if (response.verdicts(static_cast<int>(i)).monitor_only()) {
      metrics_->RecordMonitorWouldReject(r.domain_index);
    }
  }
}

void ValidationMetrics::RecordClientVerdict(harvest::Action action,
                                            std::string_view rule) const {
  if (metrics_ == nullptr) return;
  metrics_->RecordClientVerdict(ToMetricsClientAction(action), rule);
}

}  // namespace rcptguard::service
