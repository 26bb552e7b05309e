// The SMTP reply policy: what each recipient is answered, given its
// directory lookup result, its domain's policy and whether the directory is
// stale. Part of Validator (validator.h), free of gRPC.
//
//   ReplyPolicy policy(config.replies());
//   policy.Decide(result, domain, stale, response->add_verdicts());
//
// The replies (RFC 3463 enhanced status codes):
//   VALID        250 2.1.5
//   UNKNOWN      550 5.1.1; 250 2.1.5 with monitor_only in a MONITOR
//                domain; 450 4.1.1 when the directory is stale (it may lack
//                people added since: defer, do not bounce)
//   NOT_SERVED   554 5.7.1
//   MALFORMED    501 5.1.3, with the parser's detail
// Each text is the domain's own if it sets one (not for NOT_SERVED and
// stale, which have no domain text), else the server's (config.replies),
// else the built-in one below. While a client is under TEMPFAIL or REJECT
// every recipient gets the client's reply instead (ApplyClientVerdict), so
// the answers reveal nothing about which addresses exist.
//
// Thread safety: immutable after construction; safe to share. Decide
// allocates nothing but the verdict's own strings (on the response's arena
// when it has one).
#ifndef RCPTGUARD_SERVER_SERVICE_REPLY_POLICY_H_
#define RCPTGUARD_SERVER_SERVICE_REPLY_POLICY_H_

#include "rcptguard/v1/config.pb.h"
#include "rcptguard/v1/validation.pb.h"
#include "server/directory/directory.h"

namespace rcptguard::service {

// Built-in reply texts.
inline constexpr char kValidText[] = "Recipient OK";
inline constexpr char kUnknownText[] = "User unknown";
inline constexpr char kNotServedText[] = "Relay access denied";
inline constexpr char kMalformedText[] = "Bad recipient address syntax";
inline constexpr char kStaleText[] =
    "Recipient not verified: directory out of date, try again later";

class ReplyPolicy {
 public:
  // `server_replies`: the server-wide texts (config.replies); empty fields
  // fall back to the built-in texts.
  explicit ReplyPolicy(const v1::ReplyTexts& server_replies);

  // Fills `verdict` (status, reply, monitor_only, detail) for `result`.
  // `domain` is the policy of result.domain_index, null when it has none.
  void Decide(const directory::LookupResult& result,
              const directory::DomainPolicy* domain, bool stale,
              v1::RecipientVerdict* verdict) const;

  // Gives every verdict of `response` the client's reply when `client` is
  // TEMPFAIL or REJECT; leaves them as they are otherwise.
  static void ApplyClientVerdict(const v1::ClientVerdict& client,
                                 v1::ValidateResponse* response);

  // Harvest detection's accept_all (null-sender rules): every UNKNOWN
  // verdict is answered as accepted, 250 2.1.5 with monitor_only, as a
  // MONITOR domain answers it, so that the answers tell valid from unknown
  // nothing. Other verdicts are left as they are.
  void AcceptAll(v1::ValidateResponse* response) const;

 private:
  const v1::ReplyTexts server_replies_;
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_REPLY_POLICY_H_
