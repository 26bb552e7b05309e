#include "server/service/validator.h"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "server/service/config.h"
#include "server/service/metrics_enums.h"
#include "server/service/proto_enums.h"
#include "server/service/proto_time.h"

namespace rcptguard::service {
namespace {

const std::string& Pick(const std::string& domain_text,
                        const std::string& server_text,
                        const std::string& builtin) {
  if (!domain_text.empty()) return domain_text;
  if (!server_text.empty()) return server_text;
  return builtin;
}

void SetReply(v1::SmtpReply* reply, uint32_t code, std::string_view enhanced,
              const std::string& text) {
  reply->set_code(code);
  reply->set_enhanced_status(std::string(enhanced));
  reply->set_text(text);
}

}  // namespace

Validator::Validator(const v1::ServerConfig& config,
                     const directory::DirectoryHandle* handle,
                     harvest::Detector* detector,
                     metrics::ServerMetrics* metrics)
    : handle_(handle),
      detector_(detector),
      metrics_(metrics),
      max_recipients_(config.limits().max_recipients_per_request()),
      max_address_length_(config.limits().max_address_length()),
      stale_after_(ConfigDuration(config.directory().stale_after())),
      default_replies_(config.replies()) {}

absl::Status Validator::Validate(const v1::ValidateRequest& request,
                                 v1::ValidateResponse* response,
                                 std::string_view edge_identity) const {
  const int n = request.recipients_size();
  if (static_cast<uint32_t>(n) > max_recipients_) {
    return absl::InvalidArgumentError(
        absl::StrCat("recipients: ", n, " exceeds the limit of ",
                     max_recipients_, " per request"));
  }
  for (int i = 0; i < n; ++i) {
    const size_t len = request.recipients(i).size();
    if (len > max_address_length_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "recipients[", i, "]: ", len, " octets exceeds the limit of ",
          max_address_length_));
    }
  }
  // One directory for the whole request, held until the answer is built.
  std::shared_ptr<const directory::Directory> dir = handle_->Get();
  if (dir == nullptr) {
    return absl::UnavailableError("no directory loaded yet");
  }

  absl::InlinedVector<std::string_view, 64> raw(n);
  for (int i = 0; i < n; ++i) raw[i] = request.recipients(i);
  absl::InlinedVector<directory::LookupResult, 64> results(n);
  dir->LookupBatch(absl::MakeConstSpan(raw), results.data());

  static const std::string kValid(kValidText), kUnknown(kUnknownText),
      kNotServed(kNotServedText), kMalformed(kMalformedText),
      kStale(kStaleText);
  // A stale directory may lack people added since: defer, do not bounce.
  const bool stale = stale_after_ > absl::ZeroDuration() &&
                     absl::Now() - dir->info().built_at > stale_after_;
  static const std::string kEmpty;
  const std::vector<directory::DomainPolicy>& domains = dir->domains();

  response->set_request_id(request.request_id());
  response->set_directory_version(dir->info().version);
  response->mutable_verdicts()->Reserve(n);
  for (int i = 0; i < n; ++i) {
    const directory::LookupResult& r = results[i];
    const directory::ReplyTexts* texts =
        r.domain_index >= 0 ? &domains[r.domain_index].replies : nullptr;
    v1::RecipientVerdict* v = response->add_verdicts();
    switch (r.status) {
      case directory::LookupStatus::kValid:
        v->set_status(v1::RECIPIENT_STATUS_VALID);
        SetReply(v->mutable_reply(), 250, "2.1.5",
                 Pick(texts ? texts->valid : kEmpty, default_replies_.valid(),
                      kValid));
        break;
      case directory::LookupStatus::kUnknown: {
        v->set_status(v1::RECIPIENT_STATUS_UNKNOWN);
        const bool monitor =
            texts != nullptr &&
            domains[r.domain_index].mode == directory::DomainMode::kMonitor;
        if (monitor) {
          v->set_monitor_only(true);
          SetReply(v->mutable_reply(), 250, "2.1.5",
                   Pick(texts->valid, default_replies_.valid(), kValid));
        } else if (stale) {
          SetReply(v->mutable_reply(), 450, "4.1.1",
                   Pick(kEmpty, default_replies_.stale(), kStale));
        } else {
          SetReply(v->mutable_reply(), 550, "5.1.1",
                   Pick(texts ? texts->unknown : kEmpty,
                        default_replies_.unknown(), kUnknown));
        }
        break;
      }
      case directory::LookupStatus::kNotServed:
        v->set_status(v1::RECIPIENT_STATUS_NOT_SERVED);
        SetReply(v->mutable_reply(), 554, "5.7.1",
                 Pick(kEmpty, default_replies_.not_served(), kNotServed));
        break;
      case directory::LookupStatus::kMalformed:
        v->set_status(v1::RECIPIENT_STATUS_MALFORMED);
        v->set_detail(r.error);
        SetReply(v->mutable_reply(), 501, "5.1.3",
                 Pick(texts ? texts->malformed : kEmpty,
                      default_replies_.malformed(), kMalformed));
        break;
    }
  }
  if (metrics_ != nullptr) {
    RecordMetrics(request,
                  edge_identity.empty() ? std::string_view(
                                              request.context().edge_id())
                                        : edge_identity,
                  results.data(), *response);
  }
  v1::ClientVerdict* client = response->mutable_client();
  client->set_action(v1::CLIENT_ACTION_ACCEPT);
  if (detector_ == nullptr) {
    if (metrics_ != nullptr) {
      metrics_->RecordClientVerdict(metrics::ClientAction::kAccept, "");
    }
    return absl::OkStatus();
  }

  harvest::Observation obs;
  const v1::SmtpContext& ctx = request.context();
  obs.client_ip = ctx.client_ip();
  obs.authenticated = ctx.authenticated();
  obs.dsn = ctx.mail_from().empty() || ctx.mail_from() == "<>";
  obs.dry_run = request.dry_run();
  absl::InlinedVector<std::pair<int32_t, uint32_t>, 4> unknown_by_domain;
  for (int i = 0; i < n; ++i) {
    switch (results[i].status) {
      case directory::LookupStatus::kValid:
        ++obs.valid;
        break;
      case directory::LookupStatus::kUnknown: {
        ++obs.unknown;
        const int32_t d = results[i].domain_index;
        auto it = std::find_if(unknown_by_domain.begin(),
                               unknown_by_domain.end(),
                               [d](const auto& p) { return p.first == d; });
        if (it == unknown_by_domain.end()) {
          unknown_by_domain.emplace_back(d, 1);
        } else {
          ++it->second;
        }
        break;
      }
      case directory::LookupStatus::kNotServed:
        ++obs.not_served;
        break;
      case directory::LookupStatus::kMalformed:
        ++obs.malformed;
        break;
    }
  }
  obs.unknown_by_domain = absl::MakeConstSpan(unknown_by_domain);
  const harvest::Verdict verdict = detector_->Observe(obs);
  FillClientVerdict(verdict, client);
  if (metrics_ != nullptr) {
    metrics_->RecordClientVerdict(ToMetricsClientAction(verdict.action),
                                  verdict.rule);
  }
  if (client->action() == v1::CLIENT_ACTION_TEMPFAIL ||
      client->action() == v1::CLIENT_ACTION_REJECT) {
    for (v1::RecipientVerdict& v : *response->mutable_verdicts()) {
      *v.mutable_reply() = client->reply();
    }
  }
  return absl::OkStatus();
}

void Validator::RecordMetrics(const v1::ValidateRequest& request,
                              std::string_view edge_id,
                              const directory::LookupResult* results,
                              const v1::ValidateResponse& response) const {
  const int n = request.recipients_size();
  metrics_->RecordRecipientsPerRequest(n);
  metrics_->RecordEdgeRequest(edge_id);
  for (int i = 0; i < n; ++i) {
    const directory::LookupResult& r = results[i];
    metrics_->RecordRecipient(ToMetricsRecipientStatus(r.status),
                              r.domain_index);
    if (response.verdicts(i).monitor_only()) {
      metrics_->RecordMonitorWouldReject(r.domain_index);
    }
  }
}

void FillClientVerdict(const harvest::Verdict& verdict,
                       v1::ClientVerdict* client) {
  client->set_action(ToProtoClientAction(verdict.action));
  client->set_rule(verdict.rule);
  client->set_unknown_in_window(verdict.unknown_in_window);
  client->set_delay_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(verdict.delay)));
  if (verdict.blocked_until != absl::InfinitePast()) {
    *client->mutable_blocked_until() = ToProtoTimestamp(verdict.blocked_until);
  }
  if (verdict.reply.code != 0) {
    client->mutable_reply()->set_code(verdict.reply.code);
    client->mutable_reply()->set_enhanced_status(verdict.reply.enhanced_status);
    client->mutable_reply()->set_text(verdict.reply.text);
  }
}

}  // namespace rcptguard::service
