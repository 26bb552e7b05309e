// The checked mappings from the enums of the service's parts (harvest,
// directory) to their mirrors in the API (rcptguard.v1). The mappings to
// metric labels are in server/service/metrics_enums.h.
//
//   client->set_action(ToProtoClientAction(verdict.action));
//
// Contract: each mapping is one exhaustive switch over the source enum, and
// rg_service builds with -Werror=switch, so a value added to a source enum
// without a case here breaks the build instead of silently mapping to its
// neighbour (as a cast relying on declaration order would). A value outside
// the source enum maps to the target's UNSPECIFIED. The functions are
// constexpr and inline: some run once per recipient.
//
// Thread safety: pure functions.
#ifndef RCPTGUARD_SERVER_SERVICE_PROTO_ENUMS_H_
#define RCPTGUARD_SERVER_SERVICE_PROTO_ENUMS_H_

#include "rcptguard/v1/config.pb.h"
#include "rcptguard/v1/validation.pb.h"
#include "server/directory/directory.h"
#include "server/harvest/harvest.h"

namespace rcptguard::service {

constexpr v1::ClientAction ToProtoClientAction(harvest::Action action) {
  switch (action) {
    case harvest::Action::kAccept:
      return v1::CLIENT_ACTION_ACCEPT;
    case harvest::Action::kTarpit:
      return v1::CLIENT_ACTION_TARPIT;
    case harvest::Action::kTempfail:
      return v1::CLIENT_ACTION_TEMPFAIL;
    case harvest::Action::kReject:
      return v1::CLIENT_ACTION_REJECT;
  }
  return v1::CLIENT_ACTION_UNSPECIFIED;
}

constexpr v1::RecipientStatus ToProtoRecipientStatus(
    directory::LookupStatus status) {
  switch (status) {
    case directory::LookupStatus::kValid:
      return v1::RECIPIENT_STATUS_VALID;
    case directory::LookupStatus::kUnknown:
      return v1::RECIPIENT_STATUS_UNKNOWN;
    case directory::LookupStatus::kNotServed:
      return v1::RECIPIENT_STATUS_NOT_SERVED;
    case directory::LookupStatus::kMalformed:
      return v1::RECIPIENT_STATUS_MALFORMED;
  }
  return v1::RECIPIENT_STATUS_UNSPECIFIED;
}

constexpr v1::DomainMode ToProtoDomainMode(directory::DomainMode mode) {
  switch (mode) {
    case directory::DomainMode::kEnforce:
      return v1::DOMAIN_MODE_ENFORCE;
    case directory::DomainMode::kMonitor:
      return v1::DOMAIN_MODE_MONITOR;
  }
  return v1::DOMAIN_MODE_UNSPECIFIED;
}

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_PROTO_ENUMS_H_
