// `rcptguard snapshot verify FILE`: format, checksum, key id and, with
// --config, that every served domain is present.
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "clients/cli/snapshot_command.h"
#include "clients/cli/snapshot_flags.h"
#include "clients/cli/snapshot_util.h"
#include "rcptguard/v1/config.pb.h"
#include "server/config/config.h"
#include "server/directory/siphash.h"
#include "server/directory_config/directory_config.h"
#include "server/snapshot/snapshot_file.h"

namespace rcptguard::cli::internal {

int RunVerify(const std::vector<char*>& args) {
  constexpr std::string_view kCmd = "verify";
  const std::vector<std::string> operands = Operands(args);
  if (operands.size() != 1)
    return Usage(kCmd, "give exactly one snapshot FILE");
  const std::string& path = operands[0];
  const std::string key_file = absl::GetFlag(FLAGS_key);
  const std::string config_file = absl::GetFlag(FLAGS_config);
  if (!key_file.empty() && !config_file.empty()) {
    return Usage(kCmd, "give --key or --config, not both");
  }

  std::optional<v1::ServerConfig> config;
  std::string key_source = key_file;
  if (!config_file.empty()) {
    absl::StatusOr<v1::ServerConfig> loaded = service::LoadConfig(config_file);
    if (!loaded.ok()) return Fail(kCmd, loaded.status());
    if (loaded->fingerprint_key_file().empty()) {
      return Fail(kCmd, absl::StrCat("the config ", config_file,
                                     " has no fingerprint_key_file"));
    }
    key_source = loaded->fingerprint_key_file();
    config = std::move(*loaded);
  }
  std::optional<directory::SipKey> key;
  if (!key_source.empty()) {
    absl::StatusOr<directory::SipKey> k = ReadKeyFile(key_source);
    if (!k.ok()) return Fail(kCmd, k.status());
    key = *k;
  }

  // Format and checksum first, then the key by id with a message that names
  // the key file, then everything else.
  absl::StatusOr<snapshot::SnapshotInfo> info = snapshot::InspectSnapshot(path);
  if (!info.ok()) return Fail(kCmd, info.status());
  if (key.has_value() && key->Id() != info->key_id) {
    return Fail(kCmd,
                absl::StrCat("snapshot ", path, " was made with key id ",
                             HexId(info->key_id), ", the key in ", key_source,
                             " has key id ", HexId(key->Id())));
  }
  std::string against;
  if (config.has_value()) {
    snapshot::ReadOptions options;
    options.slot_storage = snapshot::SlotStorage::kMappedFile;
    absl::StatusOr<snapshot::LoadedSnapshot> loaded = snapshot::ReadSnapshot(
        path, *key, directory_config::DomainPolicies(*config), options);
    if (!loaded.ok()) return Fail(kCmd, loaded.status());
    if (!loaded->missing_domains.empty()) {
      return Fail(
          kCmd,
          absl::StrCat("snapshot ", path, " lacks served domain(s) ",
                       absl::StrJoin(loaded->missing_domains, ", "), " of ",
                       config_file, "; the server refuses it unless forced"));
    }
    against = absl::StrCat(", every domain of ", config_file, " present");
  } else if (absl::Status s = snapshot::VerifySnapshot(path, key); !s.ok()) {
    return Fail(kCmd, s);
  }
  const std::string key_result =
      key.has_value() ? absl::StrCat("key id ", HexId(info->key_id),
                                     " matches ", key_source)
                      : absl::StrCat("key id ", HexId(info->key_id),
                                     " not checked (no --key or --config)");
  std::printf(
      "OK %s: format %u.%u, checksum %s, %s, %s addresses in %zu "
      "domains%s\n",
      path.c_str(), info->format_version, info->minor_version,
      HexId(info->checksum).c_str(), key_result.c_str(),
      std::to_string(info->address_count).c_str(), info->domains.size(),
      against.c_str());
  return kExitOk;
}

}  // namespace rcptguard::cli::internal
