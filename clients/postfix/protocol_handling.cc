#include "clients/postfix/protocol_handling.h"

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "clients/postfix/socketmap_protocol.h"

namespace rcptguard::postfix::internal {

RequestPlan PlanPolicyRequest(const PolicyRequest& request,
                              const AdapterOptions& options) {
  RequestPlan plan;
  PolicyRoute route = RoutePolicyRequest(request, options.edge_id);
  if (route.kind == PolicyRoute::Kind::kAnswer) {
    plan.outcome = route.reason;
    plan.reply = std::move(route.action);
    return plan;
  }
  if (route.query.recipient.size() > kMaxRecipientBytes) {
    plan.outcome = "too_long";
    plan.reply = "501 5.1.3 Bad recipient address syntax";
    return plan;
  }
  plan.kind = RequestPlan::Kind::kLookup;
  plan.context = std::move(route.query.context);
  plan.recipient = std::move(route.query.recipient);
  plan.batch = false;
  return plan;
}

RequestPlan PlanSocketmapRequest(std::string_view payload,
                                 const AdapterOptions& options) {
  RequestPlan plan;
  absl::StatusOr<SocketmapRequest> request = ParseSocketmapRequest(payload);
  if (!request.ok()) {
    plan.outcome = "bad_request";
    plan.reply = absl::StrCat("PERM ", request.status().message());
    return plan;
  }
  if (request->name != options.socketmap_name) {
    plan.outcome = "bad_request";
    plan.reply = absl::StrCat("PERM unknown map name \"",
                              CleanText(request->name, 64), "\"");
    return plan;
  }
  if (request->key.size() > kMaxRecipientBytes) {
    plan.outcome = "too_long";
    plan.reply = "NOTFOUND ";
    return plan;
  }
  // Socketmap carries no client context: harvest detection counts these
  // under the server's "unparsable" key and never penalizes them.
  plan.kind = RequestPlan::Kind::kLookup;
  plan.context.set_edge_id(options.edge_id.empty() ? std::string("postfix")
                                                   : options.edge_id);
  plan.recipient = std::move(request->key);
  plan.batch = true;
  return plan;
}

LookupAnswer AnswerLookup(Protocol protocol,
                          const client::RecipientResult& result,
                          absl::Duration max_tarpit_delay) {
  LookupAnswer answer;
  if (protocol == Protocol::kPolicy) {
    PolicyAnswer a = AnswerPolicy(result, max_tarpit_delay);
    answer.reply = std::move(a.action);
    answer.outcome = a.outcome;
    answer.delay = a.delay;
  } else {
    SocketmapAnswer a = AnswerSocketmap(result, max_tarpit_delay);
    answer.reply = std::move(a.reply);
    answer.outcome = a.outcome;
    answer.delay = a.delay;
  }
  return answer;
}

std::string FrameReply(Protocol protocol, std::string_view reply) {
  if (protocol == Protocol::kPolicy) return FormatPolicyReply(reply);
  return EncodeNetstring(reply);
}

}  // namespace rcptguard::postfix::internal
