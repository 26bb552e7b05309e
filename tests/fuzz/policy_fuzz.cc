// libFuzzer target for the Postfix policy delegation parser: any byte
// stream, split at any point, must give requests or one InvalidArgument
// "line N: ..." error (never a crash, a hang, or a buffer beyond the line
// limit), and every request routes and answers to a one-line action.
//
// The first input byte picks the chunk size the stream is fed in, so the
// incremental paths are fuzzed too.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "clients/postfix/policy_protocol.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rcptguard::postfix;
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1,
                               size - 1);
  PolicyLimits limits;
  limits.max_line = 256;
  limits.max_attributes = 16;
  PolicyParser parser(limits);
  for (size_t pos = 0; pos < input.size(); pos += chunk) {
    parser.Append(input.substr(pos, chunk));
    for (;;) {
      PolicyRequest request;
      const PolicyParser::Next next = parser.NextRequest(&request);
      if (next == PolicyParser::Next::kNeedMore) {
        // At most one partial line is kept (+1 for a CR).
        Check(parser.buffered() <= limits.max_line + 1 + chunk);
        break;
      }
      if (next == PolicyParser::Next::kError) {
        Check(!parser.error().ok());
        Check(parser.error_kind() != PolicyError::kNone);
        Check(parser.error().message().size() < 400);
        return 0;
      }
      Check(!request.attributes.empty());
      Check(request.attributes.size() <= limits.max_attributes);
      Check(request.Get("request") == "smtpd_access_policy");
      PolicyRoute route = RoutePolicyRequest(request, "");
      if (route.kind == PolicyRoute::Kind::kAnswer) {
        Check(route.action == "DUNNO");
        continue;
      }
      Check(!route.query.recipient.empty());
      // Whatever the service says, the reply stays one line.
      rcptguard::client::RecipientResult result;
      result.source = rcptguard::client::RecipientResult::Source::kService;
      result.verdict.set_status(static_cast<rcptguard::v1::RecipientStatus>(
          route.query.recipient.size() % 5));
      result.verdict.mutable_reply()->set_code(
          static_cast<uint32_t>(route.query.recipient.size() * 37 % 700));
      result.verdict.mutable_reply()->set_text(route.query.recipient);
      result.verdict.mutable_reply()->set_enhanced_status(
          route.query.context.helo());
      result.client.set_action(static_cast<rcptguard::v1::ClientAction>(
          route.query.context.mail_from().size() % 5));
      result.client.mutable_reply()->set_text(route.query.context.helo());
      const PolicyAnswer answer = AnswerPolicy(result, absl::Seconds(1));
      const std::string reply = FormatPolicyReply(answer.action);
      Check(reply.find('\n') == reply.size() - 2);
      Check(answer.delay <= absl::Seconds(1));
    }
  }
  return 0;
}
