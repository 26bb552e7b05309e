// What rcptguard-postfix does with one request of each protocol, apart
// from the event loop that reads and writes them: a policy delegation
// request or a socketmap lookup becomes either a reply to send at once or a
// recipient to ask rcptguard about; rcptguard's answer becomes the reply
// (and a TARPIT delay); a reply is framed for the wire. Internal to
// rcptguard-postfix.
//
// Thread safety: pure functions of their arguments; safe from any thread.
#ifndef RCPTGUARD_CLIENTS_POSTFIX_PROTOCOL_HANDLING_H_
#define RCPTGUARD_CLIENTS_POSTFIX_PROTOCOL_HANDLING_H_

#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "clients/cpp/recipient_result.h"
#include "clients/postfix/adapter_metrics.h"
#include "clients/postfix/adapter_options.h"
#include "clients/postfix/policy_protocol.h"
#include "rcptguard/v1/validation.pb.h"

namespace rcptguard::postfix::internal {

// What to do with one request.
struct RequestPlan {
  enum class Kind {
    kReply,   // send `reply` now; no lookup
    kLookup,  // ask rcptguard about `recipient`
  };
  Kind kind = Kind::kReply;
  // kReply: the outcome label (static storage, for the outcomes metric)
  // and the reply, unframed.
  std::string_view outcome;
  std::string reply;
  // kLookup: the request's context and recipient, and whether the check may
  // be merged with concurrent ones of the same context.
  v1::SmtpContext context;
  std::string recipient;
  bool batch = false;
};

// A policy delegation request: RoutePolicyRequest's answer, or a lookup of
// the recipient (never merged: contexts are per SMTP session); a recipient
// over kMaxRecipientBytes is answered as malformed ("too_long").
RequestPlan PlanPolicyRequest(const PolicyRequest& request,
                              const AdapterOptions& options);

// A socketmap request ("NAME KEY"): PERM for an unparsable request or
// another map's name ("bad_request"), NOTFOUND for a key over
// kMaxRecipientBytes ("too_long"), else a mergeable lookup of the key with
// only the edge_id as context.
RequestPlan PlanSocketmapRequest(std::string_view payload,
                                 const AdapterOptions& options);

// rcptguard's answer (or the failure policy's) as the protocol's reply.
struct LookupAnswer {
  std::string reply;         // unframed
  std::string_view outcome;  // static label
  absl::Duration delay;      // TARPIT: send the reply this much later
};
LookupAnswer AnswerLookup(Protocol protocol,
                          const client::RecipientResult& result,
                          absl::Duration max_tarpit_delay);

// `reply` as sent on the wire: "action=REPLY\n\n" or a netstring.
std::string FrameReply(Protocol protocol, std::string_view reply);

}  // namespace rcptguard::postfix::internal

#endif  // RCPTGUARD_CLIENTS_POSTFIX_PROTOCOL_HANDLING_H_
