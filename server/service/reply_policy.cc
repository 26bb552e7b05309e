#include "server/service/reply_policy.h"

#include <string>
#include <string_view>

#include "server/service/proto_enums.h"

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

ReplyPolicy::ReplyPolicy(const v1::ReplyTexts& server_replies)
    : server_replies_(server_replies) {}

void ReplyPolicy::Decide(const directory::LookupResult& result,
                         const directory::DomainPolicy* domain, bool stale,
                         v1::RecipientVerdict* verdict) const {
  static const std::string kValid(kValidText), kUnknown(kUnknownText),
      kNotServed(kNotServedText), kMalformed(kMalformedText),
      kStale(kStaleText);
  static const std::string kEmpty;
  const directory::ReplyTexts* texts =
      domain != nullptr ? &domain->replies : nullptr;
  verdict->set_status(ToProtoRecipientStatus(result.status));
  switch (result.status) {
    case directory::LookupStatus::kValid:
      SetReply(
          verdict->mutable_reply(), 250, "2.1.5",
          Pick(texts ? texts->valid : kEmpty, server_replies_.valid(), kValid));
      break;
    case directory::LookupStatus::kUnknown:
      if (domain != nullptr &&
          domain->mode == directory::DomainMode::kMonitor) {
        verdict->set_monitor_only(true);
        SetReply(verdict->mutable_reply(), 250, "2.1.5",
                 Pick(texts->valid, server_replies_.valid(), kValid));
      } else if (stale) {
        SetReply(verdict->mutable_reply(), 450, "4.1.1",
                 Pick(kEmpty, server_replies_.stale(), kStale));
      } else {
        SetReply(verdict->mutable_reply(), 550, "5.1.1",
                 Pick(texts ? texts->unknown : kEmpty,
                      server_replies_.unknown(), kUnknown));
      }
      break;
    case directory::LookupStatus::kNotServed:
      SetReply(verdict->mutable_reply(), 554, "5.7.1",
               Pick(kEmpty, server_replies_.not_served(), kNotServed));
      break;
    case directory::LookupStatus::kMalformed:
      verdict->set_detail(result.error);
      SetReply(verdict->mutable_reply(), 501, "5.1.3",
               Pick(texts ? texts->malformed : kEmpty,
                    server_replies_.malformed(), kMalformed));
      break;
  }
}

void ReplyPolicy::AcceptAll(v1::ValidateResponse* response) const {
  static const std::string kValid(kValidText), kEmpty;
  for (v1::RecipientVerdict& v : *response->mutable_verdicts()) {
    if (v.status() != v1::RECIPIENT_STATUS_UNKNOWN) continue;
    v.set_monitor_only(true);
    v1::SmtpReply* reply = v.mutable_reply();
    reply->set_code(250);
    reply->set_enhanced_status("2.1.5");
    reply->set_text(Pick(kEmpty, server_replies_.valid(), kValid));
  }
}

void ReplyPolicy::ApplyClientVerdict(const v1::ClientVerdict& client,
                                     v1::ValidateResponse* response) {
  if (client.action() != v1::CLIENT_ACTION_TEMPFAIL &&
      client.action() != v1::CLIENT_ACTION_REJECT) {
    return;
  }
  for (v1::RecipientVerdict& v : *response->mutable_verdicts()) {
    *v.mutable_reply() = client.reply();
  }
}

}  // namespace rcptguard::service
