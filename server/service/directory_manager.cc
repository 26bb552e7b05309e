#include "server/service/directory_manager.h"

#include "absl/time/clock.h"
#include "google/protobuf/util/time_util.h"
#include "server/common/log.h"
#include "server/service/directory_loader.h"

namespace rcptguard::service {
namespace {

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      absl::ToUnixNanos(t));
}

}  // namespace

DirectoryManager::DirectoryManager(v1::ServerConfig config,
                                   directory::SipKey key)
    : config_(std::move(config)), key_(key), started_at_(absl::Now()) {}

absl::Status DirectoryManager::Load() {
  absl::MutexLock lock(&load_mu_);
  absl::StatusOr<LoadedDirectory> loaded = LoadDirectoryFromLdif(config_, key_);
  if (!loaded.ok()) {
    LogError("directory_load_failed",
             {{"reason", loaded.status().message()},
              {"kept_serving", handle_.Get() != nullptr ? "true" : "false"}});
    return loaded.status();
  }
  const directory::Directory& dir = *loaded->directory;
  LogInfo("directory_loaded",
          {{"version", dir.info().version},
           {"source", dir.info().source},
           {"addresses", dir.address_count()},
           {"domains", dir.domains().size()},
           {"records", loaded->stats.records()},
           {"disabled_excluded", loaded->stats.disabled_entries()},
           {"not_served_skipped", loaded->stats.addresses_not_served()},
           {"malformed_skipped", loaded->stats.addresses_malformed()},
           {"seconds", loaded->stats.duration_seconds()}});
  if (!loaded->first_malformed.empty()) {
    LogWarning("directory_malformed_addresses",
               {{"count", loaded->stats.addresses_malformed()},
                {"first", loaded->first_malformed}});
  }
  {
    absl::MutexLock stats_lock(&stats_mu_);
    last_stats_ = loaded->stats;
  }
  handle_.Replace(std::move(loaded->directory));
  handle_.Reclaim();
  return absl::OkStatus();
}

void DirectoryManager::FillStatus(v1::GetStatusResponse* response) const {
  response->set_server_version(RCPTGUARD_VERSION);
  *response->mutable_started_at() = ToTimestamp(started_at_);
  std::shared_ptr<const directory::Directory> dir = handle_.Get();
  response->set_serving(dir != nullptr);
  if (dir == nullptr) return;
  response->set_directory_version(dir->info().version);
  *response->mutable_loaded_at() = ToTimestamp(dir->info().loaded_at);
  response->set_source(dir->info().source);
  response->set_total_addresses(dir->address_count());
  response->set_directory_age_seconds(
      absl::ToDoubleSeconds(absl::Now() - dir->info().built_at));
  for (size_t i = 0; i < dir->domains().size(); ++i) {
    const directory::DomainPolicy& p = dir->domains()[i];
    v1::DomainStatus* d = response->add_domains();
    d->set_name(p.name);
    d->set_mode(p.mode == directory::DomainMode::kMonitor
                    ? v1::DOMAIN_MODE_MONITOR
                    : v1::DOMAIN_MODE_ENFORCE);
    d->set_addresses(dir->domain_address_count(i));
    for (const std::string& alias : p.aliases) d->add_aliases(alias);
  }
  absl::MutexLock lock(&stats_mu_);
  *response->mutable_load() = last_stats_;
}

}  // namespace rcptguard::service
