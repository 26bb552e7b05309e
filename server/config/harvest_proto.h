// Translates the config's HarvestDetection message into the harvest part's
// plain C++ HarvestConfig, and validates it. Errors name the field as in the
// config file, e.g. "harvest.rules[1].window: invalid duration \"10 min\"".
//
// Thread safety: pure function.
#ifndef RCPTGUARD_SERVER_CONFIG_HARVEST_PROTO_H_
#define RCPTGUARD_SERVER_CONFIG_HARVEST_PROTO_H_

#include "absl/status/statusor.h"
#include "rcptguard/v1/config.pb.h"
#include "server/harvest/harvest.h"

namespace rcptguard::service {

absl::StatusOr<harvest::HarvestConfig> HarvestConfigFromProto(
    const v1::HarvestDetection& proto);

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_CONFIG_HARVEST_PROTO_H_
