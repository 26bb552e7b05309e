#include "clients/postfix/policy_protocol.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace rcptguard::postfix {
namespace {

std::string Excerpt(std::string_view bytes) {
  return absl::CHexEscape(ToAbsl(bytes.substr(0, 40)));
}

bool IsNameByte(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '-';
}

// d.ddd.ddd with the class digit of `code`.
bool GoodEnhanced(std::string_view e, uint32_t code) {
  if (e.size() < 5 || e.size() > 9) return false;
  if (e[0] != static_cast<char>('0' + code / 100) || e[1] != '.') return false;
  size_t dot = e.find('.', 2);
  if (dot == std::string_view::npos || dot == 2 || dot - 2 > 3) return false;
  const std::string_view a = e.substr(2, dot - 2), b = e.substr(dot + 1);
  if (b.empty() || b.size() > 3) return false;
  for (std::string_view part : {a, b}) {
    for (char c : part) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    }
  }
  return true;
}

constexpr char kDunno[] = "DUNNO";
constexpr char kTempfailText[] =
    "Recipient verification temporarily unavailable, try again later";

}  // namespace

std::string_view PolicyErrorName(PolicyError error) {
  switch (error) {
    case PolicyError::kNone:
      return "none";
    case PolicyError::kLineTooLong:
      return "line_too_long";
    case PolicyError::kTooManyAttributes:
      return "too_many_attributes";
    case PolicyError::kRequestTooLarge:
      return "request_too_large";
    case PolicyError::kNoEquals:
      return "no_equals";
    case PolicyError::kEmptyName:
      return "empty_name";
    case PolicyError::kBadName:
      return "bad_name";
    case PolicyError::kNulByte:
      return "nul_byte";
    case PolicyError::kDuplicate:
      return "duplicate_attribute";
    case PolicyError::kEmptyRequest:
      return "empty_request";
    case PolicyError::kBadRequestType:
      return "bad_request_type";
  }
  return "unknown";
}

std::string_view PolicyRequest::Get(std::string_view name) const {
  for (const auto& [n, v] : attributes) {
    if (n == name) return v;
  }
  return {};
}

PolicyParser::Next PolicyParser::Fail(PolicyError kind, std::string message) {
  error_kind_ = kind;
  error_ = absl::InvalidArgumentError(message);
  return Next::kError;
}

PolicyParser::Next PolicyParser::NextRequest(PolicyRequest* request) {
  if (error_kind_ != PolicyError::kNone) return Next::kError;
  for (;;) {
    const size_t nl = buffer_.find('\n', scan_);
    if (nl == std::string::npos) {
      scan_ = buffer_.size();
      // Lines already parsed live on in pending_: drop their bytes so the
      // buffer holds at most one partial line.
      if (line_start_ > 0) {
        buffer_.erase(0, line_start_);
        scan_ = buffer_.size();
        line_start_ = 0;
      }
      if (buffer_.size() > limits_.max_line + 1) {  // + a CR
        return Fail(PolicyError::kLineTooLong,
                    absl::StrCat("line ", line_no_ + 1, ": longer than ",
                                 limits_.max_line, " bytes"));
      }
      return Next::kNeedMore;
    }
    std::string_view line(buffer_.data() + line_start_, nl - line_start_);
    scan_ = nl + 1;
    line_start_ = nl + 1;
    ++line_no_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > limits_.max_line) {
      return Fail(PolicyError::kLineTooLong,
                  absl::StrCat("line ", line_no_, ": longer than ",
                               limits_.max_line, " bytes"));
    }
    if (line.empty()) {
      if (pending_.empty()) {
        return Fail(PolicyError::kEmptyRequest,
                    absl::StrCat("line ", line_no_,
                                 ": empty line where a request should start"));
      }
      request->attributes = std::move(pending_);
      pending_.clear();
      pending_bytes_ = 0;
      buffer_.erase(0, line_start_);
      scan_ = 0;
      line_start_ = 0;
      const std::string_view type = request->Get("request");
      if (type != "smtpd_access_policy") {
        return Fail(
            PolicyError::kBadRequestType,
            absl::StrCat("request ending at line ", line_no_,
                         type.empty()
                             ? std::string(": no request attribute")
                             : absl::StrCat(": request=\"", Excerpt(type),
                                            "\", expected "
                                            "smtpd_access_policy")));
      }
      return Next::kRequest;
    }
    if (line.find('\0') != std::string_view::npos) {
      return Fail(PolicyError::kNulByte,
                  absl::StrCat("line ", line_no_, ": NUL byte"));
    }
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Fail(
          PolicyError::kNoEquals,
          absl::StrCat("line ", line_no_, ": no '=' in attribute line \"",
                       Excerpt(line), "\""));
    }
    if (eq == 0) {
      return Fail(PolicyError::kEmptyName,
                  absl::StrCat("line ", line_no_, ": empty attribute name"));
    }
    const std::string_view name = line.substr(0, eq);
    if (!std::all_of(name.begin(), name.end(), IsNameByte)) {
      return Fail(PolicyError::kBadName,
                  absl::StrCat("line ", line_no_, ": bad attribute name \"",
                               Excerpt(name), "\""));
    }
    if (pending_.size() >= limits_.max_attributes) {
      return Fail(
          PolicyError::kTooManyAttributes,
          absl::StrCat("line ", line_no_, ": more than ",
                       limits_.max_attributes, " attributes in one request"));
    }
    pending_bytes_ += line.size();
    if (pending_bytes_ > limits_.max_request_bytes) {
      return Fail(PolicyError::kRequestTooLarge,
                  absl::StrCat("line ", line_no_, ": request larger than ",
                               limits_.max_request_bytes, " bytes"));
    }
    for (const auto& [n, v] : pending_) {
      if (n == name) {
        return Fail(PolicyError::kDuplicate,
                    absl::StrCat("line ", line_no_, ": attribute \"",
                                 Excerpt(name), "\" given twice"));
      }
    }
    pending_.emplace_back(std::string(name), std::string(line.substr(eq + 1)));
  }
}

PolicyRoute RoutePolicyRequest(const PolicyRequest& request,
                               std::string_view edge_id) {
  PolicyRoute route;
  route.action = kDunno;
  if (!absl::EqualsIgnoreCase(ToAbsl(request.Get("protocol_state")), "RCPT")) {
    route.reason = "not_rcpt";
    return route;
  }
  if (!request.Get("sasl_username").empty()) {
    route.reason = "sasl";
    return route;
  }
  const std::string_view recipient = request.Get("recipient");
  if (recipient.empty()) {
    route.reason = "no_recipient";
    return route;
  }
  route.kind = PolicyRoute::Kind::kLookup;
  route.action.clear();
  route.query.recipient = std::string(recipient);
  v1::SmtpContext& c = route.query.context;
  c.set_client_ip(std::string(request.Get("client_address")));
  c.set_helo(std::string(request.Get("helo_name")));
  c.set_mail_from(std::string(request.Get("sender")));
  const std::string_view queue_id = request.Get("queue_id");
  c.set_session_id(
      std::string(queue_id.empty() ? request.Get("instance") : queue_id));
  if (!edge_id.empty()) {
    c.set_edge_id(std::string(edge_id));
  } else {
    const std::string_view server = request.Get("server_address");
    c.set_edge_id(server.empty() ? std::string("postfix")
                                 : absl::StrCat("postfix/", ToAbsl(server)));
  }
  return route;
}

std::string CleanText(std::string_view text, size_t max) {
  std::string out(text.substr(0, max));
  for (char& c : out) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  }
  return std::string(absl::StripAsciiWhitespace(out));
}

std::string FormatSmtpReply(const v1::SmtpReply& reply, uint32_t default_code,
                            std::string_view default_enhanced,
                            std::string_view default_text) {
  uint32_t code = reply.code();
  if (code < 100 || code > 599 || code / 100 != default_code / 100) {
    code = default_code;
  }
  std::string enhanced = reply.enhanced_status();
  if (!GoodEnhanced(enhanced, code)) {
    enhanced = GoodEnhanced(default_enhanced, code)
                   ? std::string(default_enhanced)
                   : absl::StrCat(code / 100, ".0.0");
  }
  std::string text = CleanText(reply.text());
  if (text.empty()) text = std::string(default_text);
  return absl::StrCat(code, " ", enhanced, " ", text);
}

PolicyAnswer AnswerPolicy(const client::RecipientResult& result,
                          absl::Duration max_delay) {
  PolicyAnswer a;
  a.delay = absl::ZeroDuration();
  switch (result.source) {
    case client::RecipientResult::Source::kFailOpen:
      a.action = kDunno;
      a.outcome = "fail_open";
      return a;
    case client::RecipientResult::Source::kTempfail:
      a.action = absl::StrCat("451 4.3.0 ", kTempfailText);
      a.outcome = "fail_tempfail";
      return a;
    case client::RecipientResult::Source::kInvalid:
      a.action = "501 5.1.3 Bad recipient address syntax";
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
    a.action = FormatSmtpReply(client.reply(), 451, "4.7.1",
                               "Too many invalid recipients, try again later");
    a.outcome = "client_tempfail";
    return a;
  }
  if (client.action() == v1::CLIENT_ACTION_REJECT) {
    a.action = FormatSmtpReply(client.reply(), 550, "5.7.1",
                               "Too many invalid recipients");
    a.outcome = "client_reject";
    return a;
  }
  const v1::RecipientVerdict& v = result.verdict;
  switch (v.status()) {
    case v1::RECIPIENT_STATUS_VALID:
      a.action = kDunno;
      a.outcome = "valid";
      break;
    case v1::RECIPIENT_STATUS_UNKNOWN:
      if (v.monitor_only()) {
        a.action = kDunno;
        a.outcome = "monitor";
      } else if (v.reply().code() / 100 == 4) {
        a.action = FormatSmtpReply(v.reply(), 450, "4.1.1",
                                   "Recipient not verified, try again later");
        a.outcome = "stale";
      } else {
        a.action = FormatSmtpReply(v.reply(), 550, "5.1.1", "User unknown");
        a.outcome = "unknown";
      }
      break;
    case v1::RECIPIENT_STATUS_NOT_SERVED:
      a.action =
          FormatSmtpReply(v.reply(), 554, "5.7.1", "Relay access denied");
      a.outcome = "not_served";
      break;
    case v1::RECIPIENT_STATUS_MALFORMED:
      a.action = FormatSmtpReply(v.reply(), 501, "5.1.3",
                                 "Bad recipient address syntax");
      a.outcome = "malformed";
      break;
    default:
      // A status this adapter does not know (a newer server): no opinion.
      a.action = kDunno;
      a.outcome = "unspecified";
      break;
  }
  return a;
}

std::string FormatPolicyReply(std::string_view action) {
  return absl::StrCat("action=", ToAbsl(action), "\n\n");
}

}  // namespace rcptguard::postfix
