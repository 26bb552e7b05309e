// Socketmap protocol: one fixture per malformed netstring
// (tests/testdata/postfix/socketmap_*.ns) with its exact error, fed whole
// and byte by byte; request parsing; answer mapping incl. the failure
// policy.
#include "clients/postfix/socketmap_protocol.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/subprocess.h"

namespace rcptguard::postfix {
namespace {

using ::rcptguard::testing::ReadFile;
using ::rcptguard::testing::SourceDir;

std::string Fixture(const std::string& name) {
  const std::string path = SourceDir() + "/tests/testdata/postfix/" + name;
  std::string text = ReadFile(path);
  EXPECT_FALSE(text.empty()) << path;
  return text;
}

struct Decoded {
  std::vector<std::string> records;
  NetstringDecoder::Next last = NetstringDecoder::Next::kNeedMore;
  NetstringError kind = NetstringError::kNone;
  std::string error;
};

Decoded Decode(const std::string& input, size_t chunk = 0,
               size_t max = kMaxNetstringBytes) {
  NetstringDecoder decoder(max);
  Decoded out;
  size_t pos = 0;
  do {
    const size_t n =
        chunk == 0 ? input.size() : std::min(chunk, input.size() - pos);
    decoder.Append(std::string_view(input).substr(pos, n));
    pos += n;
    std::string payload;
    while ((out.last = decoder.NextRecord(&payload)) ==
           NetstringDecoder::Next::kRecord) {
      out.records.push_back(payload);
    }
    if (out.last == NetstringDecoder::Next::kError) break;
  } while (pos < input.size());
  out.kind = decoder.error_kind();
  out.error = std::string(decoder.error().message());
  return out;
}

struct ErrorCase {
  const char* fixture;
  NetstringError kind;
  const char* message;
  size_t records_before;
};

class SocketmapFixtureTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(SocketmapFixtureTest, ExactError) {
  const ErrorCase& c = GetParam();
  const std::string input = Fixture(c.fixture);
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{4}}) {
    Decoded d = Decode(input, chunk);
    EXPECT_EQ(d.last, NetstringDecoder::Next::kError) << "chunk " << chunk;
    EXPECT_EQ(d.kind, c.kind) << "chunk " << chunk;
    EXPECT_EQ(d.error, c.message) << "chunk " << chunk;
    EXPECT_EQ(d.records.size(), c.records_before);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, SocketmapFixtureTest,
    ::testing::Values(
        ErrorCase{"socketmap_bad_length.ns", NetstringError::kBadLength,
                  "netstring 1: expected a digit or ':', got 'x'", 0},
        ErrorCase{"socketmap_not_a_netstring.ns", NetstringError::kBadLength,
                  "netstring 1: expected a digit or ':', got 'G'", 0},
        ErrorCase{"socketmap_empty_length.ns", NetstringError::kBadLength,
                  "netstring 1: empty length", 0},
        ErrorCase{"socketmap_leading_zero.ns", NetstringError::kLeadingZero,
                  "netstring 1: length with a leading zero", 0},
        ErrorCase{"socketmap_over_limit.ns", NetstringError::kLengthTooLong,
                  "netstring 1: length 200000 exceeds the limit of 100000", 0},
        ErrorCase{"socketmap_too_many_digits.ns",
                  NetstringError::kLengthTooLong,
                  "netstring 1: length has more than 6 digits", 0},
        ErrorCase{"socketmap_no_comma.ns", NetstringError::kNoComma,
                  "netstring 1: expected ',' after 22 bytes of payload, got "
                  "';'",
                  0},
        ErrorCase{"socketmap_second_bad.ns", NetstringError::kNoComma,
                  "netstring 2: expected ',' after 3 bytes of payload, got "
                  "'X'",
                  1}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) {
      std::string name = info.param.fixture;
      return name.substr(0, name.find('.'));
    });

TEST(NetstringDecoderTest, ValidRequestsWholeAndByteByByte) {
  for (size_t chunk : {size_t{0}, size_t{1}, size_t{5}}) {
    Decoded d = Decode(Fixture("socketmap_valid.ns"), chunk);
    EXPECT_EQ(d.last, NetstringDecoder::Next::kNeedMore) << d.error;
    EXPECT_EQ(d.records, (std::vector<std::string>{"rcpt alice@example.com",
                                                   "rcpt nobody@example.com"}));
  }
}

TEST(NetstringDecoderTest, EdgeCases) {
  Decoded d = Decode("0:,");
  EXPECT_EQ(d.records, std::vector<std::string>{""});
  d = Decode("5:a,b:c,");  // payload may hold ':' and ','
  EXPECT_EQ(d.records, std::vector<std::string>{"a,b:c"});
  d = Decode("100000:");  // at the limit: wait for the bytes
  EXPECT_EQ(d.last, NetstringDecoder::Next::kNeedMore);
  d = Decode("11:", 0, 10);
  EXPECT_EQ(d.error, "netstring 1: length 11 exceeds the limit of 10");
}

TEST(EncodeNetstringTest, RoundTrip) {
  EXPECT_EQ(EncodeNetstring("OK valid"), "8:OK valid,");
  EXPECT_EQ(EncodeNetstring("NOTFOUND "), "9:NOTFOUND ,");
  EXPECT_EQ(EncodeNetstring(""), "0:,");
  Decoded d = Decode(EncodeNetstring("rcpt a@b") + EncodeNetstring("x"));
  EXPECT_EQ(d.records, (std::vector<std::string>{"rcpt a@b", "x"}));
}

TEST(ParseSocketmapRequestTest, NameAndKey) {
  absl::StatusOr<SocketmapRequest> r =
      ParseSocketmapRequest("rcpt alice@example.com");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name, "rcpt");
  EXPECT_EQ(r->key, "alice@example.com");
  r = ParseSocketmapRequest("rcpt \"john doe\"@example.com");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->key, "\"john doe\"@example.com");
  EXPECT_EQ(ParseSocketmapRequest("rcpt").status().message(),
            "request without a space between map name and key");
  EXPECT_EQ(ParseSocketmapRequest(" alice@example.com").status().message(),
            "empty map name");
  EXPECT_EQ(ParseSocketmapRequest("rcpt ").status().message(), "empty key");
}

client::RecipientResult Service(v1::RecipientStatus status, uint32_t code) {
  client::RecipientResult r;
  r.source = client::RecipientResult::Source::kService;
  r.verdict.set_status(status);
  r.verdict.mutable_reply()->set_code(code);
  r.client.set_action(v1::CLIENT_ACTION_ACCEPT);
  return r;
}

TEST(AnswerSocketmapTest, Verdicts) {
  const absl::Duration cap = absl::Seconds(60);
  EXPECT_EQ(
      AnswerSocketmap(Service(v1::RECIPIENT_STATUS_VALID, 250), cap).reply,
      "OK valid");
  EXPECT_EQ(
      AnswerSocketmap(Service(v1::RECIPIENT_STATUS_UNKNOWN, 550), cap).reply,
      "NOTFOUND ");
  client::RecipientResult monitor = Service(v1::RECIPIENT_STATUS_UNKNOWN, 250);
  monitor.verdict.set_monitor_only(true);
  EXPECT_EQ(AnswerSocketmap(monitor, cap).reply, "OK monitor");
  client::RecipientResult stale = Service(v1::RECIPIENT_STATUS_UNKNOWN, 450);
  stale.verdict.mutable_reply()->set_text("directory out of date");
  EXPECT_EQ(AnswerSocketmap(stale, cap).reply, "TEMP directory out of date");
  EXPECT_EQ(
      AnswerSocketmap(Service(v1::RECIPIENT_STATUS_NOT_SERVED, 554), cap).reply,
      "TEMP domain not served by rcptguard");
  EXPECT_EQ(
      AnswerSocketmap(Service(v1::RECIPIENT_STATUS_MALFORMED, 501), cap).reply,
      "NOTFOUND ");
}

TEST(AnswerSocketmapTest, ClientVerdictsAndTarpit) {
  client::RecipientResult r = Service(v1::RECIPIENT_STATUS_VALID, 250);
  r.client.set_action(v1::CLIENT_ACTION_TARPIT);
  r.client.set_delay_ms(1500);
  SocketmapAnswer a = AnswerSocketmap(r, absl::Seconds(60));
  EXPECT_EQ(a.reply, "OK valid");
  EXPECT_EQ(a.delay, absl::Milliseconds(1500));
  r.client.set_action(v1::CLIENT_ACTION_TEMPFAIL);
  r.client.mutable_reply()->set_text("slow down");
  EXPECT_EQ(AnswerSocketmap(r, absl::Seconds(60)).reply, "TEMP slow down");
  r.client.set_action(v1::CLIENT_ACTION_REJECT);
  EXPECT_EQ(AnswerSocketmap(r, absl::Seconds(60)).reply, "NOTFOUND ");
}

TEST(AnswerSocketmapTest, FailOpenNeverAnswersNotFound) {
  // NOTFOUND in relay_recipient_maps rejects the recipient: failing open
  // must answer OK (with a value: an empty OK is a table error).
  client::RecipientResult r;
  r.source = client::RecipientResult::Source::kFailOpen;
  SocketmapAnswer a = AnswerSocketmap(r, absl::Seconds(1));
  EXPECT_EQ(a.reply, "OK fail-open");
  EXPECT_EQ(a.outcome, "fail_open");
  r.source = client::RecipientResult::Source::kTempfail;
  a = AnswerSocketmap(r, absl::Seconds(1));
  EXPECT_EQ(a.reply, "TEMP rcptguard unavailable");
}

TEST(AnswerSocketmapTest, InvalidRequestIsNotFoundNotFailOpen) {
  client::RecipientResult r;
  r.source = client::RecipientResult::Source::kInvalid;
  r.error = absl::InvalidArgumentError("recipients[0]: 2000 octets");
  const SocketmapAnswer a = AnswerSocketmap(r, absl::Seconds(60));
  EXPECT_EQ(a.reply, "NOTFOUND ");
  EXPECT_EQ(a.outcome, "malformed");
}

}  // namespace
}  // namespace rcptguard::postfix
