// Builds the served directory from the configuration's sources.
//
// The source is either one or more LDIF exports read in this process, or
// one binary snapshot file that the exporter built elsewhere
// (server/snapshot/snapshot_file.h, docs/snapshots.md). Whatever the source,
// a load either yields a complete directory or an error, never a partial
// one.
//
// The loaders do not judge the result: an empty or shrunken directory is
// returned as it is, and DirectoryManager's guards decide whether to serve
// it (an empty export is the classic way to reject all mail; the guards
// always refuse it).
//
// The loaders read the time from their `clock` argument: the load's
// duration and the directory's loaded_at. The directory's built_at (its
// age, staleness) comes from the data: a snapshot's created_at, or the
// oldest LDIF file's modification time (also the LDIF version's time), so
// re-reading an old export does not make it fresh.
//
// Thread safety: pure functions of their arguments; safe from any thread.
#ifndef RCPTGUARD_SERVER_SERVICE_DIRECTORY_LOADER_H_
#define RCPTGUARD_SERVER_SERVICE_DIRECTORY_LOADER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "rcptguard/v1/admin.pb.h"
#include "rcptguard/v1/config.pb.h"
#include "server/directory/directory.h"
#include "server/directory/siphash.h"
#include "server/directory_config/directory_config.h"

namespace rcptguard::service {

struct LoadedDirectory {
  std::shared_ptr<const directory::Directory> directory;
  v1::LoadStatistics stats;
  // "FILE: reason" of the first malformed address met, for the load log
  // line; empty when there was none.
  std::string first_malformed;
  // Served domains the source has no entry for (snapshots only).
  std::vector<std::string> missing_domains;
};

// LoadFingerprintKey(config) and DomainPolicies(config) live in
// server/directory_config (the CLI builds snapshots with them too); they are
// named here as well for the service's callers.
using directory_config::DomainPolicies;
using directory_config::LoadFingerprintKey;

// Reads every configured LDIF file into a new directory. Errors name the
// file and line (LDIF syntax).
absl::StatusOr<LoadedDirectory> LoadDirectoryFromLdif(
    const v1::ServerConfig& config, const directory::SipKey& key,
    const Clock* clock = RealClock::Get());

// Reads and verifies directory.snapshot_file (format, checksum, key id).
absl::StatusOr<LoadedDirectory> LoadDirectoryFromSnapshot(
    const v1::ServerConfig& config, const directory::SipKey& key,
    const Clock* clock = RealClock::Get());

// The configured source: the snapshot file if set, else the LDIF files.
absl::StatusOr<LoadedDirectory> LoadDirectoryFromSources(
    const v1::ServerConfig& config, const directory::SipKey& key,
    const Clock* clock = RealClock::Get());

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_DIRECTORY_LOADER_H_
