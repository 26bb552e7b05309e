#include "server/ldif/ldif.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace rcptguard::ldif {
namespace {

constexpr size_t kReadChunkBytes = 64 * 1024;
// How much of a bad attribute description an error message quotes.
constexpr size_t kMaxQuotedBytes = 64;

bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsKeyChar(char c) {
  return IsAlpha(c) || IsDigit(c) || c == '-' || c == '_';
}
bool IsBlankChar(char c) { return c == ' ' || c == '\t'; }

bool IsAllBlank(std::string_view s) {
  for (char c : s) {
    if (!IsBlankChar(c)) return false;
  }
  return true;
}

// descr (letter, then letters, digits, '-', '_') or numeric OID.
bool IsValidAttributeType(std::string_view type) {
  if (type.empty()) return false;
  if (IsAlpha(type[0])) {
    for (char c : type) {
      if (!IsKeyChar(c)) return false;
    }
    return true;
  }
  // numericoid = number 1*( DOT number ); leading zeros tolerated.
  bool saw_dot = false;
  bool digit_run = false;
  for (char c : type) {
    if (IsDigit(c)) {
      digit_run = true;
    } else if (c == '.' && digit_run) {
      saw_dot = true;
      digit_run = false;
    } else {
      return false;
    }
  }
  return saw_dot && digit_run;
}

constexpr std::array<int8_t, 256> MakeBase64Table() {
  std::array<int8_t, 256> table{};
  for (auto& v : table) v = -1;
  const char* alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
  return table;
}
constexpr std::array<int8_t, 256> kBase64 = MakeBase64Table();

int B64(char c) { return kBase64[static_cast<unsigned char>(c)]; }

// Strict RFC 4648 base64: the standard alphabet, length a multiple of 4,
// '=' only as one or two final pad characters. Non-zero pad bits are
// tolerated (the data still decodes unambiguously).
bool DecodeBase64Strict(std::string_view in, std::string* out) {
  out->clear();
  if (in.size() % 4 != 0) return false;
  out->reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool last = i + 4 == in.size();
    const int a = B64(in[i]);
    const int b = B64(in[i + 1]);
    if (a < 0 || b < 0) return false;
    out->push_back(static_cast<char>((a << 2) | (b >> 4)));
    if (last && in[i + 2] == '=') {
      return in[i + 3] == '=';
    }
    const int c = B64(in[i + 2]);
    if (c < 0) return false;
    out->push_back(static_cast<char>(((b & 0xf) << 4) | (c >> 2)));
    if (last && in[i + 3] == '=') return true;
    const int d = B64(in[i + 3]);
    if (d < 0) return false;
    out->push_back(static_cast<char>(((c & 0x3) << 6) | d));
  }
  return true;
}

std::string_view StripTrailingBlanks(std::string_view s) {
  while (!s.empty() && IsBlankChar(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view SkipLeadingSpaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

}  // namespace

bool IsValidAttributeDescription(std::string_view description) {
  const size_t semi = description.find(';');
  if (!IsValidAttributeType(description.substr(0, semi))) return false;
  if (semi == std::string_view::npos) return true;
  std::string_view options = description.substr(semi + 1);
  // Each option is 1*keychar; splitting on ';' must give no empty part.
  while (true) {
    const size_t next = options.find(';');
    std::string_view option = options.substr(0, next);
    if (option.empty()) return false;
    for (char c : option) {
      if (!IsKeyChar(c)) return false;
    }
    if (next == std::string_view::npos) return true;
    options.remove_prefix(next + 1);
  }
}

std::vector<std::string_view> LdifRecord::Values(std::string_view name) const {
  std::vector<std::string_view> values;
  for (const LdifAttribute& attribute : attributes) {
    if (absl::EqualsIgnoreCase(attribute.name, ToAbsl(name)))
      values.push_back(attribute.value);
  }
  return values;
}

bool LdifRecord::HasObjectClass(std::string_view oc) const {
  for (const LdifAttribute& attribute : attributes) {
    // Names are lower-cased by the reader, but records built elsewhere (the
    // live LDAP export, tests) need not be.
    if (absl::EqualsIgnoreCase(attribute.name, "objectclass") &&
        absl::EqualsIgnoreCase(attribute.value, ToAbsl(oc))) {
      return true;
    }
  }
  return false;
}

LdifReader::LdifReader(std::istream* in, std::string source_name)
    : in_(in), source_name_(std::move(source_name)) {}

absl::Status LdifReader::Error(int line, std::string_view reason) const {
  return absl::InvalidArgumentError(
      absl::StrCat(source_name_, ":", line, ": ", ToAbsl(reason)));
}

absl::StatusOr<std::optional<LdifRecord>> LdifReader::Fail(
    absl::Status status) {
  error_ = std::move(status);
  return error_;
}

LdifReader::ReadResult LdifReader::ReadPhysicalLine(std::string_view* line) {
  // long_line_ holds either a line still being assembled across refills, or
  // the line returned by the previous call: drop the latter.
  if (!assembling_long_line_) long_line_.clear();
  while (true) {
    const char* start = buffer_.data() + buffer_pos_;
    const size_t available = buffer_end_ - buffer_pos_;
    const char* newline =
        available == 0
            ? nullptr
            : static_cast<const char*>(std::memchr(start, '\n', available));
    std::string_view result;
    if (newline != nullptr) {
      const size_t length = static_cast<size_t>(newline - start);
      buffer_pos_ += length + 1;
      if (assembling_long_line_) {
        long_line_.append(start, length);
        assembling_long_line_ = false;
        result = long_line_;
      } else {
        result = std::string_view(start, length);
      }
    } else {
      if (available > 0) {
        long_line_.append(start, available);
        assembling_long_line_ = true;
        buffer_pos_ = buffer_end_;
        // +1: the line may still end in the CR of a CRLF.
        if (long_line_.size() > kMaxLdifLineBytes + 1) {
          line_error_ =
              absl::StrCat("line longer than ", kMaxLdifLineBytes, " bytes");
          line_error_line_ = physical_line_ + 1;
          return ReadResult::kError;
        }
      }
      if (!input_done_) {
        if (!Refill()) return ReadResult::kError;
        continue;
      }
      if (!assembling_long_line_) return ReadResult::kEof;
      // The last line of a file that does not end in a newline.
      assembling_long_line_ = false;
      result = long_line_;
    }
    ++physical_line_;
    if (!result.empty() && result.back() == '\r') result.remove_suffix(1);
    if (result.size() > kMaxLdifLineBytes) {
      line_error_ =
          absl::StrCat("line longer than ", kMaxLdifLineBytes, " bytes");
      line_error_line_ = physical_line_;
      return ReadResult::kError;
    }
    *line = result;
    return ReadResult::kLine;
  }
}

bool LdifReader::Refill() {
  if (buffer_.size() != kReadChunkBytes) buffer_.resize(kReadChunkBytes);
  in_->read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
  const std::streamsize got = in_->gcount();
  if (in_->bad()) {
    line_error_ = "read error";
    line_error_line_ = physical_line_ + 1;
    return false;
  }
  // A short read means end of file (or a failed stream, which cannot be
  // read further either).
  if (got < static_cast<std::streamsize>(buffer_.size())) input_done_ = true;
  buffer_pos_ = 0;
  buffer_end_ = static_cast<size_t>(got);
  return true;
}

LdifReader::ReadResult LdifReader::ReadLogicalLine() {
  std::string_view physical;
  if (has_lookahead_) {
    logical_.swap(lookahead_);
    logical_line_ = lookahead_line_;
    has_lookahead_ = false;
  } else {
    logical_line_ = physical_line_ + 1;
    const ReadResult result = ReadPhysicalLine(&physical);
    if (result != ReadResult::kLine) return result;
    logical_.assign(physical);
  }
  // A line of only spaces and tabs that cannot continue anything (it starts
  // a logical line) is a blank line: sloppy exports leave such lines
  // between records. A blank line is never continued.
  if (IsAllBlank(logical_)) {
    logical_.clear();
    return ReadResult::kLine;
  }
  while (true) {
    const ReadResult result = ReadPhysicalLine(&physical);
    if (result == ReadResult::kError) return result;
    if (result == ReadResult::kEof) break;
    if (!physical.empty() && physical.front() == ' ') {
      // Folding is byte-based: the continuation may split a UTF-8 sequence.
      if (logical_.size() + physical.size() - 1 > kMaxLdifLineBytes) {
        line_error_ =
            absl::StrCat("line longer than ", kMaxLdifLineBytes, " bytes");
        line_error_line_ = logical_line_;
        return ReadResult::kError;
      }
      logical_.append(physical.data() + 1, physical.size() - 1);
      continue;
    }
    lookahead_.assign(physical);
    lookahead_line_ = physical_line_;
    has_lookahead_ = true;
    break;
  }
  return ReadResult::kLine;
}

namespace {

// Splits one unfolded `attr[;options]: value` line. Returns the reason on
// failure (empty on success).
std::string ParseAttributeLine(std::string_view line, LdifAttribute* out) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return "line has no ':' separator";
  const std::string_view description = line.substr(0, colon);
  if (description.empty()) return "empty attribute name";
  if (!IsValidAttributeDescription(description)) {
    return absl::StrCat(
        "invalid attribute description \"",
        absl::CHexEscape(ToAbsl(description.substr(0, kMaxQuotedBytes))),
        description.size() > kMaxQuotedBytes ? "...\"" : "\"");
  }
  const size_t semi = description.find(';');
  out->name.assign(description.substr(0, semi));
  absl::AsciiStrToLower(&out->name);
  if (semi == std::string_view::npos) {
    out->options.clear();
  } else {
    out->options.assign(description.substr(semi));
    absl::AsciiStrToLower(&out->options);
  }
  std::string_view rest = line.substr(colon + 1);
  if (!rest.empty() && rest.front() == ':') {
    rest = StripTrailingBlanks(SkipLeadingSpaces(rest.substr(1)));
    if (!DecodeBase64Strict(rest, &out->value)) return "invalid base64 value";
    return "";
  }
  if (!rest.empty() && rest.front() == '<')
    return "URL values are not supported";
  out->value.assign(StripTrailingBlanks(SkipLeadingSpaces(rest)));
  return "";
}

}  // namespace

absl::StatusOr<std::optional<LdifRecord>> LdifReader::Next() {
  if (!error_.ok()) return error_;
  if (at_end_) return std::optional<LdifRecord>();

  LdifRecord record;
  LdifAttribute attribute;
  // Up to and including the dn line.
  while (true) {
    const ReadResult result = ReadLogicalLine();
    if (result == ReadResult::kError)
      return Fail(Error(line_error_line_, line_error_));
    if (result == ReadResult::kEof) {
      at_end_ = true;
      return std::optional<LdifRecord>();
    }
    if (logical_.empty() || logical_.front() == '#') continue;
    if (logical_.front() == ' ') {
      return Fail(
          Error(logical_line_, "continuation line at the start of a record"));
    }
    std::string reason = ParseAttributeLine(logical_, &attribute);
    if (!reason.empty()) return Fail(Error(logical_line_, reason));
    if (version_allowed_ && attribute.name == "version") {
      version_allowed_ = false;
      if (attribute.value != "1") {
        return Fail(Error(logical_line_,
                          absl::StrCat("unsupported LDIF version \"",
                                       absl::CHexEscape(attribute.value.substr(
                                           0, kMaxQuotedBytes)),
                                       "\" (only version 1 is supported)")));
      }
      continue;
    }
    version_allowed_ = false;
    if (attribute.name != "dn") {
      return Fail(Error(logical_line_, "record does not start with \"dn:\""));
    }
    record.dn = std::move(attribute.value);
    record.line = logical_line_;
    break;
  }

  size_t record_bytes = record.dn.size();
  while (true) {
    const ReadResult result = ReadLogicalLine();
    if (result == ReadResult::kError)
      return Fail(Error(line_error_line_, line_error_));
    if (result == ReadResult::kEof) {
      at_end_ = true;
      break;
    }
    if (logical_.empty()) break;
    if (logical_.front() == '#') continue;
    std::string reason = ParseAttributeLine(logical_, &attribute);
    if (!reason.empty()) return Fail(Error(logical_line_, reason));
    // ldifde (Active Directory's own export tool) writes every record as
    // "changetype: add" with the full entry: that is content, so accept it
    // where RFC 2849 puts it, right after the dn. Other change records
    // (modify, delete, modrdn) and controls are refused.
    if (attribute.name == "changetype" && record.attributes.empty() &&
        absl::AsciiStrToLower(attribute.value) == "add") {
      continue;
    }
    if (attribute.name == "changetype" || attribute.name == "control") {
      return Fail(Error(logical_line_, "change records are not supported"));
    }
    if (attribute.name == "dn") {
      return Fail(Error(
          logical_line_,
          "dn line inside a record (missing blank line between records?)"));
    }
    if (record.attributes.size() >= kMaxLdifRecordValues) {
      return Fail(Error(record.line, absl::StrCat("record has more than ",
                                                  kMaxLdifRecordValues,
                                                  " attribute values")));
    }
    record_bytes += attribute.name.size() + attribute.value.size();
    if (record_bytes > kMaxLdifRecordBytes) {
      return Fail(Error(
          record.line,
          absl::StrCat("record larger than ", kMaxLdifRecordBytes, " bytes")));
    }
    // ParseAttributeLine assigns every field, so the moved-from `attribute`
    // is safe to reuse.
    record.attributes.push_back(std::move(attribute));
  }
  return std::optional<LdifRecord>(std::move(record));
}

}  // namespace rcptguard::ldif
