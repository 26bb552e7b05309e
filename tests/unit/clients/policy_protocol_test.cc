// Policy delegation protocol: one fixture per malformed input
// (tests/testdata/postfix/policy_*.txt) with its exact error, fed whole and
// byte by byte; routing and answer mapping.
#include "clients/postfix/policy_protocol.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::postfix {
namespace {

using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::SourceDir;
using ::testing::HasSubstr;

std::string Fixture(const std::string& name) {
  const std::string path = SourceDir() + "/tests/testdata/postfix/" + name;
  std::string text = ReadFile(path);
  EXPECT_FALSE(text.empty()) << path;
  return text;
}

struct Parsed {
  std::vector<PolicyRequest> requests;
  PolicyParser::Next last = PolicyParser::Next::kNeedMore;
  PolicyError kind = PolicyError::kNone;
  std::string error;
};

// Feeds `input` in chunks of `chunk` bytes (0: all at once).
Parsed Parse(const std::string& input, size_t chunk = 0,
             PolicyLimits limits = {}) {
  PolicyParser parser(limits);
  Parsed out;
  size_t pos = 0;
  do {
    const size_t n =
        chunk == 0 ? input.size() : std::min(chunk, input.size() - pos);
    parser.Append(std::string_view(input).substr(pos, n));
    pos += n;
    for (;;) {
      PolicyRequest request;
      out.last = parser.NextRequest(&request);
      if (out.last == PolicyParser::Next::kRequest) {
        out.requests.push_back(std::move(request));
        continue;
      }
      break;
    }
    if (out.last == PolicyParser::Next::kError) break;
  } while (pos < input.size());
  out.kind = parser.error_kind();
  out.error = std::string(parser.error().message());
  return out;
}

struct ErrorCase {
  const char* fixture;
  PolicyError kind;
  const char* message;
};

class PolicyFixtureTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(PolicyFixtureTest, ExactError) {
  const ErrorCase& c = GetParam();
  const std::string input = Fixture(c.fixture);
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{7}}) {
    Parsed p = Parse(input, chunk);
    EXPECT_EQ(p.last, PolicyParser::Next::kError) << "chunk " << chunk;
    EXPECT_EQ(p.kind, c.kind) << "chunk " << chunk;
    EXPECT_EQ(p.error, c.message) << "chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, PolicyFixtureTest,
    ::testing::Values(
        ErrorCase{"policy_line_too_long.txt", PolicyError::kLineTooLong,
                  "line 4: longer than 2048 bytes"},
        ErrorCase{"policy_too_many_attributes.txt",
                  PolicyError::kTooManyAttributes,
                  "line 101: more than 100 attributes in one request"},
        ErrorCase{"policy_request_too_large.txt", PolicyError::kRequestTooLarge,
                  "line 18: request larger than 32768 bytes"},
        ErrorCase{"policy_no_equals.txt", PolicyError::kNoEquals,
                  "line 3: no '=' in attribute line \"GET / HTTP/1.0\""},
        ErrorCase{"policy_empty_name.txt", PolicyError::kEmptyName,
                  "line 2: empty attribute name"},
        ErrorCase{"policy_bad_name.txt", PolicyError::kBadName,
                  "line 2: bad attribute name \"bad name\""},
        ErrorCase{"policy_nul_byte.txt", PolicyError::kNulByte,
                  "line 2: NUL byte"},
        ErrorCase{"policy_duplicate.txt", PolicyError::kDuplicate,
                  "line 3: attribute \"recipient\" given twice"},
        ErrorCase{"policy_empty_request.txt", PolicyError::kEmptyRequest,
                  "line 1: empty line where a request should start"},
        ErrorCase{"policy_bad_request_type.txt", PolicyError::kBadRequestType,
                  "request ending at line 3: request=\"junk\", expected "
                  "smtpd_access_policy"},
        ErrorCase{"policy_missing_request_type.txt",
                  PolicyError::kBadRequestType,
                  "request ending at line 3: no request attribute"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) {
      std::string name = info.param.fixture;
      return name.substr(0, name.find('.'));
    });

TEST(PolicyParserTest, ValidPostfixRequest) {
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{13}}) {
    Parsed p = Parse(Fixture("policy_valid.txt"), chunk);
    ASSERT_EQ(p.requests.size(), 1u) << p.error;
    EXPECT_EQ(p.last, PolicyParser::Next::kNeedMore);
    const PolicyRequest& r = p.requests[0];
    EXPECT_EQ(r.attributes.size(), 32u);
    EXPECT_EQ(r.Get("recipient"), "alice@example.com");
    EXPECT_EQ(r.Get("client_address"), "203.0.113.7");
    EXPECT_EQ(r.Get("queue_id"), "");
    EXPECT_EQ(r.Get("no_such_attribute"), "");
  }
}

TEST(PolicyParserTest, ManyRequestsPerConnectionWithCrlf) {
  Parsed p = Parse(Fixture("policy_two_requests_crlf.txt"), 5);
  ASSERT_EQ(p.requests.size(), 2u) << p.error;
  EXPECT_EQ(p.requests[0].Get("recipient"), "alice@example.com");
  EXPECT_EQ(p.requests[1].Get("recipient"), "bob@example.com");
}

TEST(PolicyParserTest, ValueMayHoldEqualsAndSpaces) {
  Parsed p = Parse("request=smtpd_access_policy\nccert_subject=CN=a b=c\n\n");
  ASSERT_EQ(p.requests.size(), 1u);
  EXPECT_EQ(p.requests[0].Get("ccert_subject"), "CN=a b=c");
}

TEST(PolicyParserTest, PartialLineOverLimitFailsBeforeItsNewline) {
  PolicyParser parser(PolicyLimits{});
  parser.Append(std::string(5000, 'a'));
  PolicyRequest request;
  EXPECT_EQ(parser.NextRequest(&request), PolicyParser::Next::kError);
  EXPECT_EQ(parser.error().message(), "line 1: longer than 2048 bytes");
  // The parser stays in error.
  parser.Append("\n\n");
  EXPECT_EQ(parser.NextRequest(&request), PolicyParser::Next::kError);
}

TEST(PolicyParserTest, BufferStaysBoundedWhileAttributesArrive) {
  PolicyLimits limits;
  limits.max_request_bytes = 1 << 20;
  PolicyParser parser(limits);
  PolicyRequest request;
  parser.Append("request=smtpd_access_policy\n");
  for (int i = 0; i < 50; ++i) {
    parser.Append("helo_name" + std::to_string(i) + "=" +
                  std::string(1000, 'x') + "\n");
    ASSERT_EQ(parser.NextRequest(&request), PolicyParser::Next::kNeedMore);
    EXPECT_EQ(parser.buffered(), 0u);
  }
}

PolicyRequest Request(
    std::vector<std::pair<std::string, std::string>> attributes) {
  PolicyRequest r;
  r.attributes = std::move(attributes);
  return r;
}

TEST(RoutePolicyRequestTest, RcptIsLookedUpWithTheSessionContext) {
  PolicyRoute route =
      RoutePolicyRequest(Request({{"request", "smtpd_access_policy"},
                                  {"protocol_state", "RCPT"},
                                  {"client_address", "203.0.113.7"},
                                  {"helo_name", "mx.example.net"},
                                  {"sender", "s@example.net"},
                                  {"recipient", "Alice@Example.com"},
                                  {"queue_id", ""},
                                  {"instance", "1a.2b.3c.0"},
                                  {"server_address", "192.0.2.25"}}),
                         "");
  ASSERT_EQ(route.kind, PolicyRoute::Kind::kLookup);
  EXPECT_EQ(route.query.recipient, "Alice@Example.com");
  EXPECT_EQ(route.query.context.client_ip(), "203.0.113.7");
  EXPECT_EQ(route.query.context.helo(), "mx.example.net");
  EXPECT_EQ(route.query.context.mail_from(), "s@example.net");
  EXPECT_EQ(route.query.context.session_id(), "1a.2b.3c.0");
  EXPECT_EQ(route.query.context.edge_id(), "postfix/192.0.2.25");
  EXPECT_FALSE(route.query.context.authenticated());

  route = RoutePolicyRequest(Request({{"protocol_state", "rcpt"},
                                      {"recipient", "a@example.com"},
                                      {"queue_id", "4XyZ1"}}),
                             "edge-1");
  ASSERT_EQ(route.kind, PolicyRoute::Kind::kLookup);
  EXPECT_EQ(route.query.context.session_id(), "4XyZ1");
  EXPECT_EQ(route.query.context.edge_id(), "edge-1");
}

TEST(RoutePolicyRequestTest, NoLookupOutsideRcptForSaslOrWithoutRecipient) {
  for (const char* state : {"CONNECT", "EHLO", "MAIL", "DATA", "END-OF-MESSAGE",
                            "VRFY", "ETRN", ""}) {
    PolicyRoute route = RoutePolicyRequest(
        Request({{"protocol_state", state}, {"recipient", "a@example.com"}}),
        "");
    EXPECT_EQ(route.kind, PolicyRoute::Kind::kAnswer) << state;
    EXPECT_EQ(route.action, "DUNNO");
    EXPECT_EQ(route.reason, "not_rcpt");
  }
  PolicyRoute sasl =
      RoutePolicyRequest(Request({{"protocol_state", "RCPT"},
                                  {"recipient", "nobody@example.com"},
                                  {"sasl_username", "joe"}}),
                         "");
  EXPECT_EQ(sasl.kind, PolicyRoute::Kind::kAnswer);
  EXPECT_EQ(sasl.action, "DUNNO");
  EXPECT_EQ(sasl.reason, "sasl");
  PolicyRoute none =
      RoutePolicyRequest(Request({{"protocol_state", "RCPT"}}), "");
  EXPECT_EQ(none.kind, PolicyRoute::Kind::kAnswer);
  EXPECT_EQ(none.reason, "no_recipient");
}

client::RecipientResult Service(v1::RecipientStatus status, uint32_t code,
                                const std::string& enhanced,
                                const std::string& text) {
  client::RecipientResult r;
  r.source = client::RecipientResult::Source::kService;
  r.verdict.set_status(status);
  r.verdict.mutable_reply()->set_code(code);
  r.verdict.mutable_reply()->set_enhanced_status(enhanced);
  r.verdict.mutable_reply()->set_text(text);
  r.client.set_action(v1::CLIENT_ACTION_ACCEPT);
  return r;
}

TEST(AnswerPolicyTest, RecipientVerdicts) {
  const absl::Duration cap = absl::Seconds(60);
  PolicyAnswer a = AnswerPolicy(
      Service(v1::RECIPIENT_STATUS_VALID, 250, "2.1.5", "Recipient OK"), cap);
  EXPECT_EQ(a.action, "DUNNO");
  EXPECT_EQ(a.outcome, "valid");
  a = AnswerPolicy(
      Service(v1::RECIPIENT_STATUS_UNKNOWN, 550, "5.1.1", "User unknown"), cap);
  EXPECT_EQ(a.action, "550 5.1.1 User unknown");
  EXPECT_EQ(a.outcome, "unknown");
  a = AnswerPolicy(Service(v1::RECIPIENT_STATUS_UNKNOWN, 550, "5.1.1",
                           "No such person at this address"),
                   cap);
  EXPECT_EQ(a.action, "550 5.1.1 No such person at this address");
  a = AnswerPolicy(Service(v1::RECIPIENT_STATUS_UNKNOWN, 450, "4.1.1",
                           "Recipient not verified"),
                   cap);
  EXPECT_EQ(a.action, "450 4.1.1 Recipient not verified");
  EXPECT_EQ(a.outcome, "stale");
  client::RecipientResult monitor =
      Service(v1::RECIPIENT_STATUS_UNKNOWN, 250, "2.1.5", "Recipient OK");
  monitor.verdict.set_monitor_only(true);
  a = AnswerPolicy(monitor, cap);
  EXPECT_EQ(a.action, "DUNNO");
  EXPECT_EQ(a.outcome, "monitor");
  a = AnswerPolicy(Service(v1::RECIPIENT_STATUS_NOT_SERVED, 554, "5.7.1",
                           "Relay access denied"),
                   cap);
  EXPECT_EQ(a.action, "554 5.7.1 Relay access denied");
  a = AnswerPolicy(Service(v1::RECIPIENT_STATUS_MALFORMED, 501, "5.1.3",
                           "Bad recipient address syntax"),
                   cap);
  EXPECT_EQ(a.action, "501 5.1.3 Bad recipient address syntax");
  EXPECT_EQ(a.delay, absl::ZeroDuration());
}

TEST(AnswerPolicyTest, BadOrMissingRepliesFallBackToDefaults) {
  const absl::Duration cap = absl::Seconds(60);
  // A 2xx for an unknown recipient that is not monitor-only, a missing
  // enhanced code, text with a newline (which would end the reply early).
  PolicyAnswer a = AnswerPolicy(
      Service(v1::RECIPIENT_STATUS_UNKNOWN, 250, "", "x\n\naction=OK"), cap);
  EXPECT_EQ(a.action, "550 5.1.1 x  action=OK");
  a = AnswerPolicy(Service(v1::RECIPIENT_STATUS_UNKNOWN, 0, "9.9.9", ""), cap);
  EXPECT_EQ(a.action, "550 5.1.1 User unknown");
  a = AnswerPolicy(Service(v1::RECIPIENT_STATUS_MALFORMED, 553, "4.1.3", "bad"),
                   cap);
  EXPECT_EQ(a.action, "553 5.1.3 bad");
  a = AnswerPolicy(Service(v1::RECIPIENT_STATUS_UNSPECIFIED, 0, "", ""), cap);
  EXPECT_EQ(a.action, "DUNNO");
  EXPECT_EQ(a.outcome, "unspecified");
}

TEST(AnswerPolicyTest, ClientVerdicts) {
  const absl::Duration cap = absl::Seconds(5);
  client::RecipientResult r =
      Service(v1::RECIPIENT_STATUS_UNKNOWN, 550, "5.1.1", "User unknown");
  r.client.set_action(v1::CLIENT_ACTION_TARPIT);
  r.client.set_delay_ms(2000);
  PolicyAnswer a = AnswerPolicy(r, cap);
  EXPECT_EQ(a.action, "550 5.1.1 User unknown");
  EXPECT_EQ(a.delay, absl::Seconds(2));
  r.client.set_delay_ms(60000);
  EXPECT_EQ(AnswerPolicy(r, cap).delay, absl::Seconds(5));  // capped

  r.client.set_action(v1::CLIENT_ACTION_TEMPFAIL);
  r.client.set_delay_ms(0);
  r.client.mutable_reply()->set_code(451);
  r.client.mutable_reply()->set_enhanced_status("4.7.1");
  r.client.mutable_reply()->set_text("Too many unknown recipients, slow down");
  a = AnswerPolicy(r, cap);
  EXPECT_EQ(a.action, "451 4.7.1 Too many unknown recipients, slow down");
  EXPECT_EQ(a.outcome, "client_tempfail");
  r.client.clear_reply();
  EXPECT_EQ(AnswerPolicy(r, cap).action,
            "451 4.7.1 Too many invalid recipients, try again later");

  r.client.set_action(v1::CLIENT_ACTION_REJECT);
  r.client.mutable_reply()->set_code(550);
  r.client.mutable_reply()->set_enhanced_status("5.7.1");
  r.client.mutable_reply()->set_text("Too many unknown recipients");
  a = AnswerPolicy(r, cap);
  EXPECT_EQ(a.action, "550 5.7.1 Too many unknown recipients");
  EXPECT_EQ(a.outcome, "client_reject");
  // A REJECT with a temporary code is still permanent.
  r.client.mutable_reply()->set_code(451);
  EXPECT_EQ(AnswerPolicy(r, cap).action,
            "550 5.7.1 Too many unknown recipients");
}

TEST(AnswerPolicyTest, FailurePolicy) {
  client::RecipientResult r;
  r.source = client::RecipientResult::Source::kFailOpen;
  r.error = absl::UnavailableError("connection refused");
  PolicyAnswer a = AnswerPolicy(r, absl::Seconds(1));
  EXPECT_EQ(a.action, "DUNNO");
  EXPECT_EQ(a.outcome, "fail_open");
  r.source = client::RecipientResult::Source::kTempfail;
  a = AnswerPolicy(r, absl::Seconds(1));
  EXPECT_EQ(a.action,
            "451 4.3.0 Recipient verification temporarily unavailable, try "
            "again later");
  EXPECT_EQ(a.outcome, "fail_tempfail");
}

TEST(FormatPolicyReplyTest, ActionLineAndEmptyLine) {
  EXPECT_EQ(FormatPolicyReply("DUNNO"), "action=DUNNO\n\n");
}

// A request the server refused as invalid is the recipient's fault: 501,
// never the failure policy's DUNNO.
TEST(AnswerPolicyTest, InvalidRequestIsAnsweredAsMalformed) {
  client::RecipientResult r;
  r.source = client::RecipientResult::Source::kInvalid;
  r.error = absl::InvalidArgumentError("recipients[0]: 2000 octets");
  const PolicyAnswer a = AnswerPolicy(r, absl::Seconds(60));
  EXPECT_EQ(a.action, "501 5.1.3 Bad recipient address syntax");
  EXPECT_EQ(a.outcome, "malformed");
}

}  // namespace
}  // namespace rcptguard::postfix
