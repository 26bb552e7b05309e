// The checked mappings from the enums of the service's parts (harvest,
// directory, DirectoryManager) to the label enums of server/metrics. The
// mappings to the API are in server/service/proto_enums.h.
//
//   metrics->RecordRecipient(ToMetricsRecipientStatus(r.status), domain);
//
// Contract: each mapping is one exhaustive switch over the source enum, and
// rg_service builds with -Werror=switch, so a value added to a source enum
// without a case here breaks the build instead of silently mapping to its
// neighbour (as a cast relying on declaration order would). A value outside
// the source enum maps to the most cautious label (malformed, reject,
// failed). The functions are constexpr and inline: some run once per
// recipient.
//
// Thread safety: pure functions.
#ifndef RCPTGUARD_SERVER_SERVICE_METRICS_ENUMS_H_
#define RCPTGUARD_SERVER_SERVICE_METRICS_ENUMS_H_

#include "server/directory/directory.h"
#include "server/harvest/harvest.h"
#include "server/metrics/metrics.h"
#include "server/service/directory_manager.h"

namespace rcptguard::service {

constexpr metrics::ClientAction ToMetricsClientAction(harvest::Action action) {
  switch (action) {
    case harvest::Action::kAccept:
      return metrics::ClientAction::kAccept;
    case harvest::Action::kTarpit:
      return metrics::ClientAction::kTarpit;
    case harvest::Action::kTempfail:
      return metrics::ClientAction::kTempfail;
    case harvest::Action::kReject:
      return metrics::ClientAction::kReject;
  }
  return metrics::ClientAction::kReject;
}

constexpr metrics::RecipientStatus ToMetricsRecipientStatus(
    directory::LookupStatus status) {
  switch (status) {
    case directory::LookupStatus::kValid:
      return metrics::RecipientStatus::kValid;
    case directory::LookupStatus::kUnknown:
      return metrics::RecipientStatus::kUnknown;
    case directory::LookupStatus::kNotServed:
      return metrics::RecipientStatus::kNotServed;
    case directory::LookupStatus::kMalformed:
      return metrics::RecipientStatus::kMalformed;
  }
  return metrics::RecipientStatus::kMalformed;
}

constexpr metrics::ReloadKind ToMetricsReloadResult(ReloadResult::Kind kind) {
  switch (kind) {
    case ReloadResult::Kind::kLoaded:
      return metrics::ReloadKind::kSuccess;
    case ReloadResult::Kind::kUnchanged:
      return metrics::ReloadKind::kUnchanged;
    case ReloadResult::Kind::kRefused:
      return metrics::ReloadKind::kRefused;
    case ReloadResult::Kind::kFailed:
      return metrics::ReloadKind::kFailed;
  }
  return metrics::ReloadKind::kFailed;
}

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_METRICS_ENUMS_H_
