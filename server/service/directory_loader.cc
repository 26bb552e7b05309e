#include "server/service/directory_loader.h"

#include <sys/stat.h>

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/file.h"
#include "common/status_macros.h"
#include "server/ldif/mapping.h"
#include "server/snapshot/snapshot_file.h"

namespace rcptguard::service {
namespace {

absl::StatusOr<ldif::AttributeMapping> MappingFromConfig(
    const v1::DirectorySource& source) {
  ldif::AttributeMapping mapping;
  if (source.has_mapping()) {
    mapping = directory_config::MappingFromProto(source.mapping());
  } else {
    RG_ASSIGN_OR_RETURN(ldif::Preset preset,
                        ldif::ParsePreset(source.preset()));
    mapping = ldif::AttributeMapping::ForPreset(preset);
  }
  mapping.include_disabled_accounts = source.include_disabled_accounts();
  RG_RETURN_IF_ERROR(mapping.Validate());
  return mapping;
}

}  // namespace

absl::StatusOr<LoadedDirectory> LoadDirectoryFromLdif(
    const v1::ServerConfig& config, const directory::SipKey& key,
    const Clock* clock) {
  const absl::Time start = clock->Now();
  RG_ASSIGN_OR_RETURN(ldif::AttributeMapping mapping,
                      MappingFromConfig(config.directory()));
  RG_ASSIGN_OR_RETURN(
      directory::DirectoryBuilder builder,
      directory::DirectoryBuilder::Create(key, DomainPolicies(config)));

  v1::LoadStatistics stats;
  std::string first_malformed;
  // The export's age is the data's: the oldest file's modification time
  // (stat before reading, so a file replaced meanwhile looks older, never
  // fresher). Re-reading an old file (SIGHUP) must not make it fresh.
  absl::Time built_at = absl::InfiniteFuture();
  for (const std::string& file : config.directory().ldif_files()) {
    struct stat st;
    if (::stat(file.c_str(), &st) == 0) {
      built_at = std::min(built_at, absl::TimeFromTimespec(st.st_mtim));
    }
    auto sink = [&](std::string_view address) {
      std::string error;
      switch (builder.AddAddress(address, &error)) {
        case directory::DirectoryBuilder::AddOutcome::kAdded:
          stats.set_addresses_added(stats.addresses_added() + 1);
          break;
        case directory::DirectoryBuilder::AddOutcome::kDuplicate:
          stats.set_addresses_duplicate(stats.addresses_duplicate() + 1);
          break;
        case directory::DirectoryBuilder::AddOutcome::kNotServed:
          stats.set_addresses_not_served(stats.addresses_not_served() + 1);
          break;
        case directory::DirectoryBuilder::AddOutcome::kMalformed:
          stats.set_addresses_malformed(stats.addresses_malformed() + 1);
          if (first_malformed.empty()) {
            first_malformed = absl::StrCat(file, ": ", error);
          }
          break;
      }
    };
    RG_ASSIGN_OR_RETURN(ldif::LdifLoadStats file_stats,
                        ldif::LoadLdifFile(file, mapping, sink));
    stats.set_records(stats.records() + file_stats.records);
    stats.set_included_entries(stats.included_entries() + file_stats.included);
    stats.set_disabled_entries(stats.disabled_entries() + file_stats.disabled);
    stats.set_other_excluded_entries(stats.other_excluded_entries() +
                                     file_stats.no_addresses +
                                     file_stats.wrong_object_class);
  }
  const absl::Time now = clock->Now();
  // Every file was read, so each could be stat'ed; should none have been,
  // the load's time stands in.
  if (built_at == absl::InfiniteFuture()) built_at = now;
  directory::DirectoryInfo info;
  info.version = absl::StrCat(
      "ldif-",
      absl::FormatTime("%Y%m%dT%H%M%SZ", built_at, absl::UTCTimeZone()));
  info.source = absl::StrCat(
      "ldif:", absl::StrJoin(config.directory().ldif_files(), ","));
  info.built_at = built_at;
  info.loaded_at = now;
  RG_ASSIGN_OR_RETURN(std::shared_ptr<const directory::Directory> dir,
                      std::move(builder).Build(std::move(info)));
  stats.set_duration_seconds(absl::ToDoubleSeconds(clock->Now() - start));
  LoadedDirectory loaded;
  loaded.directory = std::move(dir);
  loaded.stats = std::move(stats);
  loaded.first_malformed = std::move(first_malformed);
  return loaded;
}

absl::StatusOr<LoadedDirectory> LoadDirectoryFromSnapshot(
    const v1::ServerConfig& config, const directory::SipKey& key,
    const Clock* clock) {
  const absl::Time start = clock->Now();
  snapshot::ReadOptions options;
  options.loaded_at = start;
  RG_ASSIGN_OR_RETURN(
      snapshot::LoadedSnapshot snap,
      snapshot::ReadSnapshot(config.directory().snapshot_file(), key,
                             DomainPolicies(config), options));
  LoadedDirectory loaded;
  loaded.directory = std::move(snap.directory);
  loaded.missing_domains = std::move(snap.missing_domains);
  loaded.stats.set_addresses_added(loaded.directory->address_count());
  loaded.stats.set_duration_seconds(
      absl::ToDoubleSeconds(clock->Now() - start));
  return loaded;
}

absl::StatusOr<LoadedDirectory> LoadDirectoryFromSources(
    const v1::ServerConfig& config, const directory::SipKey& key,
    const Clock* clock) {
  if (!config.directory().snapshot_file().empty()) {
    return LoadDirectoryFromSnapshot(config, key, clock);
  }
  return LoadDirectoryFromLdif(config, key, clock);
}

}  // namespace rcptguard::service
