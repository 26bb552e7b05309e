#include "server/service/directory_manager.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <optional>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/strings.h"
#include "server/config/config.h"
#include "server/service/proto_enums.h"
#include "server/service/proto_time.h"
#include "server/snapshot/snapshot_file.h"

namespace rcptguard::service {
namespace {

// A short, bounded code for a loader error (metrics label, status).
std::string ClassifyLoadError(const absl::Status& status) {
  const std::string_view message = ToStd(status.message());
  switch (status.code()) {
    case absl::StatusCode::kDataLoss:
      // "empty", "truncated" or "checksum" (any other corruption).
      return std::string(snapshot::SnapshotDamage(status));
    case absl::StatusCode::kFailedPrecondition:
      return message.find("key id") != std::string_view::npos ? "key"
                                                              : "format";
    case absl::StatusCode::kInvalidArgument:
      return "format";
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kInternal:
      return "io";
    default:
      return "other";
  }
}

std::string_view KindName(ReloadResult::Kind kind) {
  switch (kind) {
    case ReloadResult::Kind::kLoaded:
      return "loaded";
    case ReloadResult::Kind::kUnchanged:
      return "unchanged";
    case ReloadResult::Kind::kRefused:
      return "refused";
    case ReloadResult::Kind::kFailed:
      return "failed";
  }
  return "failed";
}

// Identity of a file's current content as far as stat() can tell.
std::optional<DirectoryManager::FileStamp> Stamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return DirectoryManager::FileStamp{st.st_ino, st.st_mtim.tv_sec,
                                     st.st_mtim.tv_nsec, st.st_size};
}

}  // namespace

DirectoryManager::DirectoryManager(v1::ServerConfig config,
                                   directory::SipKey key,
                                   DirectoryManagerOptions options)
    : config_(std::move(config)),
      key_(key),
      clock_(options.clock),
      on_loaded_(std::move(options.on_loaded)),
      observer_(std::move(options.observer)),
      started_at_(clock_->Now()),
      watch_interval_(ConfigDuration(config_.directory().watch_interval())),
      stale_after_(ConfigDuration(config_.directory().stale_after())) {}

DirectoryManager::~DirectoryManager() { StopMaintenance(); }

std::pair<std::string, std::string> DirectoryManager::CheckGuards(
    const LoadedDirectory& candidate, bool force) const {
  const directory::Directory& next = *candidate.directory;
  if (next.address_count() == 0) {
    return {"empty",
            absl::StrCat("candidate directory ", next.info().version, " from ",
                         next.info().source,
                         " has no address in a served domain: refusing to "
                         "serve an empty directory")};
  }
  std::shared_ptr<const directory::Directory> current = handle_.Get();
  if (current == nullptr || force) return {"", ""};
  std::vector<std::string> lost;
  for (size_t i = 0; i < current->domains().size() && i < next.domains().size();
       ++i) {
    if (current->domain_address_count(i) > 0 &&
        next.domain_address_count(i) == 0) {
      lost.push_back(current->domains()[i].name);
    }
  }
  if (!lost.empty()) {
    return {"missing_domain",
            absl::StrCat("candidate directory ", next.info().version,
                         " has no address for served domain(s) ",
                         absl::StrJoin(lost, ", "), " that directory ",
                         current->info().version,
                         " serves; refused unless forced")};
  }
  const double max_shrink = config_.directory().max_shrink();
  const double floor = std::ceil(static_cast<double>(current->address_count()) *
                                 (1.0 - max_shrink));
  if (static_cast<double>(next.address_count()) < floor) {
    const double lost_share =
        1.0 - static_cast<double>(next.address_count()) /
                  static_cast<double>(current->address_count());
    return {"shrunk",
            absl::StrCat("candidate directory ", next.info().version, " has ",
                         next.address_count(), " addresses, ",
                         absl::StrFormat("%.1f", lost_share * 100),
                         "% fewer than the served ", current->address_count(),
                         " (limit ", absl::StrFormat("%.1f", max_shrink * 100),
                         "%); refused unless forced")};
  }
  return {"", ""};
}

absl::StatusOr<ReloadResult> DirectoryManager::Reload(
    bool force, std::string_view trigger) {
  absl::MutexLock lock(&load_mu_);
  const absl::Time start = clock_->Now();
  const std::string& flag_file = config_.directory().force_reload_file();
  const bool flagged =
      !flag_file.empty() && ::access(flag_file.c_str(), F_OK) == 0;
  force = force || flagged;
  if (const std::string& snapshot = config_.directory().snapshot_file();
      !snapshot.empty()) {
    std::optional<FileStamp> stamp = Stamp(snapshot);
    absl::MutexLock stamp_lock(&stamp_mu_);
    attempted_stamp_ = stamp;
  }

  ReloadResult result;
  absl::StatusOr<LoadedDirectory> loaded =
      LoadDirectoryFromSources(config_, key_, clock_);
  if (!loaded.ok()) {
    result.kind = ReloadResult::Kind::kFailed;
    result.reason = ClassifyLoadError(loaded.status());
    result.status = loaded.status();
    result.seconds = absl::ToDoubleSeconds(clock_->Now() - start);
    RecordOutcome(result, trigger);
    return loaded.status();
  }
  const directory::Directory& dir = *loaded->directory;
  result.version = dir.info().version;

  std::shared_ptr<const directory::Directory> current = handle_.Get();
  if (current != nullptr && current->info().version == dir.info().version &&
      current->address_count() == dir.address_count() &&
      !config_.directory().snapshot_file().empty()) {
    result.kind = ReloadResult::Kind::kUnchanged;
    result.seconds = absl::ToDoubleSeconds(clock_->Now() - start);
    RecordOutcome(result, trigger);
    return result;
  }

  auto [reason, message] = CheckGuards(*loaded, force);
  if (!reason.empty()) {
    result.kind = ReloadResult::Kind::kRefused;
    result.reason = reason;
    result.status = absl::FailedPreconditionError(message);
    result.seconds = absl::ToDoubleSeconds(clock_->Now() - start);
    RecordOutcome(result, trigger);
    return result.status;
  }
  if (!loaded->missing_domains.empty()) {
    LogWarning("directory_missing_domains",
               {{"version", dir.info().version},
                {"domains", absl::StrJoin(loaded->missing_domains, ",")}});
  }
  LogInfo("directory_loaded",
          {{"version", dir.info().version},
           {"source", dir.info().source},
           {"trigger", trigger},
           {"forced", force ? "true" : "false"},
           {"addresses", dir.address_count()},
           {"domains", dir.domains().size()},
           {"records", loaded->stats.records()},
           {"disabled_excluded", loaded->stats.disabled_entries()},
           {"not_served_skipped", loaded->stats.addresses_not_served()},
           {"malformed_skipped", loaded->stats.addresses_malformed()},
           {"seconds", loaded->stats.duration_seconds()}});
  for (const directory::AliasDomainAddresses& alias :
       dir.info().alias_domain_addresses) {
    // Once per alias and load: the folded addresses are otherwise silent
    // (duplicates), and they mean the alias accepts more than Exchange does.
    LogWarning("alias_domain_has_explicit_addresses",
               {{"alias", alias.alias},
                {"target", alias.target},
                {"addresses", alias.addresses},
                {"hint",
                 "addresses written with an alias domain are folded into the "
                 "target; every user@alias whose user@target exists is "
                 "accepted. If the domain is an Exchange accepted domain with "
                 "its own proxyAddresses, serve it as a domain of its own, "
                 "not an alias (docs/ldap-mapping.md)"}});
  }
  if (!loaded->first_malformed.empty()) {
    LogWarning("directory_malformed_addresses",
               {{"count", loaded->stats.addresses_malformed()},
                {"first", loaded->first_malformed}});
  }
  for (const directory::AliasDomainAddresses& alias :
       dir.info().alias_domain_addresses) {
    v1::AliasDomainAddresses* out = loaded->stats.add_alias_domain_addresses();
    out->set_alias(alias.alias);
    out->set_target(alias.target);
    out->set_addresses(alias.addresses);
  }
  {
    absl::MutexLock stats_lock(&stats_mu_);
    last_stats_ = loaded->stats;
  }
  handle_.Replace(loaded->directory);
  handle_.Reclaim();
  if (flagged && ::unlink(flag_file.c_str()) == 0) {
    LogInfo("force_reload_file_removed", {{"path", flag_file}});
  }
  result.kind = ReloadResult::Kind::kLoaded;
  result.seconds = absl::ToDoubleSeconds(clock_->Now() - start);
  RecordOutcome(result, trigger);
  if (on_loaded_) on_loaded_();
  return result;
}

void DirectoryManager::RecordOutcome(const ReloadResult& result,
                                     std::string_view trigger) {
  if (result.kind == ReloadResult::Kind::kRefused ||
      result.kind == ReloadResult::Kind::kFailed) {
    LogError(result.kind == ReloadResult::Kind::kRefused ? "reload_refused"
                                                         : "reload_failed",
             {{"trigger", trigger},
              {"reason", result.reason},
              {"message", result.status.message()},
              {"kept_serving", handle_.Get() != nullptr
                                   ? handle_.Get()->info().version
                                   : std::string("none")}});
  }
  {
    absl::MutexLock lock(&stats_mu_);
    *last_reload_.mutable_at() = ToProtoTimestamp(clock_->Now());
    last_reload_.set_result(std::string(KindName(result.kind)));
    last_reload_.set_reason(result.reason);
    last_reload_.set_message(std::string(result.status.message()));
    last_reload_.set_trigger(std::string(trigger));
    if (result.kind == ReloadResult::Kind::kRefused) {
      last_reload_.set_refused_total(last_reload_.refused_total() + 1);
    }
    if (result.kind == ReloadResult::Kind::kFailed) {
      last_reload_.set_failed_total(last_reload_.failed_total() + 1);
    }
  }
  if (observer_) {
    std::shared_ptr<const directory::Directory> dir = handle_.Get();
    observer_(result, dir.get());
  }
}

void DirectoryManager::StartMaintenance() {
  absl::MutexLock lock(&maintenance_mu_);
  if (maintenance_.joinable()) return;
  stop_ = false;
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
}

void DirectoryManager::StopMaintenance() {
  {
    absl::MutexLock lock(&maintenance_mu_);
    stop_ = true;
  }
  if (maintenance_.joinable()) maintenance_.join();
}

void DirectoryManager::MaintenanceLoop() {
  const std::string& snapshot = config_.directory().snapshot_file();
  const bool watch =
      !snapshot.empty() && watch_interval_ > absl::ZeroDuration();
  const absl::Duration tick =
      watch ? std::min(watch_interval_, absl::Seconds(1)) : absl::Seconds(1);
  absl::Time next_check = clock_->Now() + watch_interval_;
  for (;;) {
    {
      absl::MutexLock lock(&maintenance_mu_);
      auto stopped = [this]() ABSL_SHARED_LOCKS_REQUIRED(maintenance_mu_) {
        return stop_;
      };
      if (maintenance_mu_.AwaitWithTimeout(absl::Condition(&stopped), tick)) {
        return;
      }
    }
    handle_.Reclaim();
    if (!watch || clock_->Now() < next_check) continue;
    next_check = clock_->Now() + watch_interval_;
    // A file that vanished (deleted, dangling symlink, folder gone) is
    // tried once too: the load fails, which is logged, counted and shown
    // in GetStatus, and the served directory stays; then nothing more is
    // tried until a file appears.
    std::optional<FileStamp> now = Stamp(snapshot);
    {
      absl::MutexLock lock(&stamp_mu_);
      if (now == attempted_stamp_) continue;
    }
    (void)Reload(/*force=*/false, "watch");
  }
}

void DirectoryManager::FillStatus(v1::GetStatusResponse* response) const {
  response->set_server_version(RCPTGUARD_VERSION);
  *response->mutable_started_at() = ToProtoTimestamp(started_at_);
  {
    absl::MutexLock lock(&stats_mu_);
    *response->mutable_load() = last_stats_;
    *response->mutable_last_reload() = last_reload_;
  }
  std::shared_ptr<const directory::Directory> dir = handle_.Get();
  response->set_serving(dir != nullptr);
  if (dir == nullptr) return;
  response->set_directory_version(dir->info().version);
  *response->mutable_loaded_at() = ToProtoTimestamp(dir->info().loaded_at);
  response->set_source(dir->info().source);
  response->set_total_addresses(dir->address_count());
  const absl::Duration age = clock_->Now() - dir->info().built_at;
  response->set_directory_age_seconds(absl::ToDoubleSeconds(age));
  response->set_stale(stale_after_ > absl::ZeroDuration() &&
                      age > stale_after_);
  for (size_t i = 0; i < dir->domains().size(); ++i) {
    const directory::DomainPolicy& p = dir->domains()[i];
    v1::DomainStatus* d = response->add_domains();
    d->set_name(p.name);
    d->set_mode(ToProtoDomainMode(p.mode));
    d->set_addresses(dir->domain_address_count(i));
    for (const std::string& alias : p.aliases) d->add_aliases(alias);
  }
}

}  // namespace rcptguard::service
