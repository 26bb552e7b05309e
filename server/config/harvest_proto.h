// Translates the config's HarvestDetection message into the harvest part's
// plain C++ HarvestConfig, and validates it. Errors name the field as in the
// config file, e.g. "harvest.rules[1].window: invalid duration \"10 min\"".
//
// Thread safety: pure function.
#ifndef RCPTGUARD_SERVER_CONFIG_HARVEST_PROTO_H_
#define RCPTGUARD_SERVER_CONFIG_HARVEST_PROTO_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rcptguard/v1/config.pb.h"
#include "server/harvest/harvest.h"

namespace rcptguard::service {

absl::StatusOr<harvest::HarvestConfig> HarvestConfigFromProto(
    const v1::HarvestDetection& proto);

// harvest.shared with defaults applied, checked, and its password file read.
struct SharedHarvestSettings {
  std::string address;
  std::string username;
  std::string password;  // the file's content, trailing newline removed
  std::string key_prefix = "rcptguard:";
  int database = 0;
  absl::Duration connect_timeout = absl::Seconds(1);
  absl::Duration command_timeout = absl::Seconds(1);
  absl::Duration flush_interval = absl::Milliseconds(250);
  size_t max_queued_deltas = 200'000;
};
// Errors name the field, e.g. "harvest.shared.address: required".
absl::StatusOr<SharedHarvestSettings> SharedHarvestFromProto(
    const v1::SharedHarvest& proto);

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_CONFIG_HARVEST_PROTO_H_
