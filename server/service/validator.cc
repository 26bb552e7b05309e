#include "server/service/validator.h"

#include <memory>
#include <string_view>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "server/config/config.h"

namespace rcptguard::service {

Validator::Validator(const v1::ServerConfig& config,
                     const directory::DirectoryHandle* handle,
                     harvest::Detector* detector,
                     metrics::ServerMetrics* metrics, const Clock* clock)
    : handle_(handle),
      detector_(detector),
      metrics_(metrics),
      replies_(config.replies()),
      max_recipients_(config.limits().max_recipients_per_request()),
      max_address_length_(config.limits().max_address_length()),
      stale_after_(ConfigDuration(config.directory().stale_after())),
      clock_(clock) {}

absl::Status Validator::CheckLimits(const v1::ValidateRequest& request) const {
  const int n = request.recipients_size();
  if (static_cast<uint32_t>(n) > max_recipients_) {
    return absl::InvalidArgumentError(
        absl::StrCat("recipients: ", n, " exceeds the limit of ",
                     max_recipients_, " per request"));
  }
  for (int i = 0; i < n; ++i) {
    const size_t len = request.recipients(i).size();
    if (len > max_address_length_) {
      return absl::InvalidArgumentError(
          absl::StrCat("recipients[", i, "]: ", len,
                       " octets exceeds the limit of ", max_address_length_));
    }
  }
  return absl::OkStatus();
}

absl::Status Validator::Validate(const v1::ValidateRequest& request,
                                 v1::ValidateResponse* response,
                                 std::string_view edge_identity) const {
  if (absl::Status limits = CheckLimits(request); !limits.ok()) return limits;
  // One directory for the whole request, held until the answer is built.
  std::shared_ptr<const directory::Directory> dir = handle_->Get();
  if (dir == nullptr) {
    return absl::UnavailableError("no directory loaded yet");
  }

  const int n = request.recipients_size();
  absl::InlinedVector<std::string_view, 64> raw(n);
  for (int i = 0; i < n; ++i) raw[i] = request.recipients(i);
  absl::InlinedVector<directory::LookupResult, 64> results(n);
  dir->LookupBatch(absl::MakeConstSpan(raw), results.data());

  // A stale directory may lack people added since: defer, do not bounce.
  const bool stale = stale_after_ > absl::ZeroDuration() &&
                     clock_->Now() - dir->info().built_at > stale_after_;
  const std::vector<directory::DomainPolicy>& domains = dir->domains();
  response->set_request_id(request.request_id());
  response->set_directory_version(dir->info().version);
  response->mutable_verdicts()->Reserve(n);
  for (const directory::LookupResult& r : results) {
    replies_.Decide(r, r.domain_index >= 0 ? &domains[r.domain_index] : nullptr,
                    stale, response->add_verdicts());
  }
  if (metrics_.enabled()) {
    metrics_.RecordRecipients(
        request,
        edge_identity.empty() ? std::string_view(request.context().edge_id())
                              : edge_identity,
        absl::MakeConstSpan(results), *response);
  }

  v1::ClientVerdict* client = response->mutable_client();
  if (detector_ == nullptr) {
    client->set_action(v1::CLIENT_ACTION_ACCEPT);
    client->set_harvest_skipped(v1::HARVEST_SKIP_DISABLED);
    metrics_.RecordClientVerdict(harvest::Action::kAccept, "");
    return absl::OkStatus();
  }
  const harvest::Verdict verdict = ObserveRequest(
      *detector_, request, absl::MakeConstSpan(results), edge_identity);
  FillClientVerdict(verdict, client, DelayCapMs(request));
  client->set_harvest_skipped(HarvestSkipFor(verdict, request.context()));
  metrics_.RecordClientVerdict(verdict.action, verdict.rule);
  ReplyPolicy::ApplyClientVerdict(*client, response);
  if (verdict.accept_all) replies_.AcceptAll(response);
  return absl::OkStatus();
}

absl::Status Validator::ServedDomains(v1::ServedDomains* out) const {
  std::shared_ptr<const directory::Directory> dir = handle_->Get();
  if (dir == nullptr) {
    return absl::UnavailableError("no directory loaded yet");
  }
  out->set_directory_version(dir->info().version);
  out->set_stale(stale_after_ > absl::ZeroDuration() &&
                 clock_->Now() - dir->info().built_at > stale_after_);
  for (const directory::DomainPolicy& p : dir->domains()) {
    v1::ServedDomain* d = out->add_domains();
    d->set_name(p.name);
    d->set_monitor(p.mode == directory::DomainMode::kMonitor);
    for (const std::string& alias : p.aliases) d->add_aliases(alias);
  }
  return absl::OkStatus();
}

}  // namespace rcptguard::service
