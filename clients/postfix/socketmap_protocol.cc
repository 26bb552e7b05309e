#include "clients/postfix/socketmap_protocol.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "clients/postfix/policy_protocol.h"
#include "common/strings.h"

namespace rcptguard::postfix {
namespace {

size_t Digits(size_t n) {
  size_t d = 1;
  while (n >= 10) {
    n /= 10;
    ++d;
  }
  return d;
}

std::string Reason(const v1::SmtpReply& reply, std::string_view fallback) {
  std::string text = CleanText(reply.text(), 200);
  return text.empty() ? std::string(fallback) : text;
}

constexpr char kNotFound[] = "NOTFOUND ";

}  // namespace

std::string_view NetstringErrorName(NetstringError error) {
  switch (error) {
    case NetstringError::kNone:
      return "none";
    case NetstringError::kBadLength:
      return "bad_length";
    case NetstringError::kLeadingZero:
      return "leading_zero";
    case NetstringError::kLengthTooLong:
      return "length_too_long";
    case NetstringError::kNoComma:
      return "no_comma";
  }
  return "unknown";
}

NetstringDecoder::Next NetstringDecoder::Fail(NetstringError kind,
                                              std::string message) {
  error_kind_ = kind;
  error_ = absl::InvalidArgumentError(
      absl::StrCat("netstring ", records_ + 1, ": ", message));
  return Next::kError;
}

NetstringDecoder::Next NetstringDecoder::NextRecord(std::string* payload) {
  if (error_kind_ != NetstringError::kNone) return Next::kError;
  const size_t max_digits = Digits(max_payload_);
  size_t i = 0;
  size_t length = 0;
  while (i < buffer_.size() &&
         absl::ascii_isdigit(static_cast<unsigned char>(buffer_[i]))) {
    if (i == max_digits) {
      return Fail(NetstringError::kLengthTooLong,
                  absl::StrCat("length has more than ", max_digits, " digits"));
    }
    length = length * 10 + static_cast<size_t>(buffer_[i] - '0');
    ++i;
  }
  if (i > 1 && buffer_[0] == '0') {
    return Fail(NetstringError::kLeadingZero, "length with a leading zero");
  }
  if (i == buffer_.size()) return Next::kNeedMore;
  if (buffer_[i] != ':') {
    return Fail(
        NetstringError::kBadLength,
        absl::StrCat("expected a digit or ':', got '",
                     absl::CHexEscape(absl::string_view(&buffer_[i], 1)), "'"));
  }
  if (i == 0) return Fail(NetstringError::kBadLength, "empty length");
  if (length > max_payload_) {
    return Fail(NetstringError::kLengthTooLong,
                absl::StrCat("length ", length, " exceeds the limit of ",
                             max_payload_));
  }
  const size_t need = i + 1 + length + 1;
  if (buffer_.size() < need) return Next::kNeedMore;
  if (buffer_[need - 1] != ',') {
    return Fail(
        NetstringError::kNoComma,
        absl::StrCat("expected ',' after ", length, " bytes of payload, got '",
                     absl::CHexEscape(absl::string_view(&buffer_[need - 1], 1)),
                     "'"));
  }
  payload->assign(buffer_, i + 1, length);
  buffer_.erase(0, need);
  ++records_;
  return Next::kRecord;
}

std::string EncodeNetstring(std::string_view payload) {
  return absl::StrCat(payload.size(), ":", ToAbsl(payload), ",");
}

absl::StatusOr<SocketmapRequest> ParseSocketmapRequest(
    std::string_view payload) {
  const size_t space = payload.find(' ');
  if (space == std::string_view::npos) {
    return absl::InvalidArgumentError(
        "request without a space between map "
        "name and key");
  }
  if (space == 0) return absl::InvalidArgumentError("empty map name");
  if (space + 1 == payload.size()) {
    return absl::InvalidArgumentError("empty key");
  }
  SocketmapRequest request;
  request.name = std::string(payload.substr(0, space));
  request.key = std::string(payload.substr(space + 1));
  return request;
}

SocketmapAnswer AnswerSocketmap(const client::RecipientResult& result,
                                absl::Duration max_delay) {
  SocketmapAnswer a;
  a.delay = absl::ZeroDuration();
  switch (result.source) {
    case client::RecipientResult::Source::kFailOpen:
      a.reply = "OK fail-open";
      a.outcome = "fail_open";
      return a;
    case client::RecipientResult::Source::kTempfail:
      a.reply = "TEMP rcptguard unavailable";
      a.outcome = "fail_tempfail";
      return a;
    case client::RecipientResult::Source::kInvalid:
      a.reply = kNotFound;
      a.outcome = "malformed";
      return a;
    case client::RecipientResult::Source::kService:
      break;
  }
  const v1::ClientVerdict& client = result.client;
  if (client.action() == v1::CLIENT_ACTION_TARPIT) {
    a.delay = std::min(absl::Milliseconds(client.delay_ms()), max_delay);
  }
  if (client.action() == v1::CLIENT_ACTION_TEMPFAIL) {
    a.reply = absl::StrCat(
        "TEMP ", Reason(client.reply(), "too many invalid recipients"));
    a.outcome = "client_tempfail";
    return a;
  }
  if (client.action() == v1::CLIENT_ACTION_REJECT) {
    a.reply = kNotFound;
    a.outcome = "client_reject";
    return a;
  }
  const v1::RecipientVerdict& v = result.verdict;
  switch (v.status()) {
    case v1::RECIPIENT_STATUS_VALID:
      a.reply = "OK valid";
      a.outcome = "valid";
      break;
    case v1::RECIPIENT_STATUS_UNKNOWN:
      if (v.monitor_only()) {
        a.reply = "OK monitor";
        a.outcome = "monitor";
      } else if (v.reply().code() / 100 == 4) {
        a.reply =
            absl::StrCat("TEMP ", Reason(v.reply(), "recipient not verified"));
        a.outcome = "stale";
      } else {
        a.reply = kNotFound;
        a.outcome = "unknown";
      }
      break;
    case v1::RECIPIENT_STATUS_NOT_SERVED:
      a.reply = "TEMP domain not served by rcptguard";
      a.outcome = "not_served";
      break;
    case v1::RECIPIENT_STATUS_MALFORMED:
      a.reply = kNotFound;
      a.outcome = "malformed";
      break;
    default:
      a.reply = "OK unspecified";
      a.outcome = "unspecified";
      break;
  }
  return a;
}

}  // namespace rcptguard::postfix
