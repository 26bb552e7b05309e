#include "common/text.h"

#include "absl/strings/str_cat.h"

namespace rcptguard {

size_t Utf8SequenceLength(std::string_view s) {
  if (s.empty()) return 0;
  const unsigned char b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second octet
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  const unsigned char b1 = static_cast<unsigned char>(s[1]);
  if (b1 < lo || b1 > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80 || b > 0xBF) return 0;
  }
  return n;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string SafeText(std::string_view s, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes) + 8);
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    size_t n = 1;
    std::string piece;
    if (b < 0x20 || b == 0x7F) {
      piece = absl::StrCat("\\x", absl::Hex(b, absl::kZeroPad2));
    } else if (b == '\\') {
      piece = "\\\\";
    } else if (b < 0x80) {
      piece.assign(1, static_cast<char>(b));
    } else if ((n = Utf8SequenceLength(s.substr(i))) != 0) {
      piece.assign(s.substr(i, n));
    } else {
      n = 1;
      piece = absl::StrCat("\\x", absl::Hex(b, absl::kZeroPad2));
    }
    if (out.size() + piece.size() > max_bytes) {
      absl::StrAppend(&out, "...(", s.size(), " octets)");
      return out;
    }
    out += piece;
    i += n;
  }
  return out;
}

void AppendJsonEscaped(std::string& out, std::string_view v, size_t max_bytes) {
  const size_t total = v.size();
  if (max_bytes > 0 && v.size() > max_bytes) v = v.substr(0, max_bytes);
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    const unsigned char b = static_cast<unsigned char>(c);
    if (b >= 0x80) {
      const size_t n = Utf8SequenceLength(v.substr(i));
      if (n == 0) {
        absl::StrAppend(&out, "\\u00", absl::Hex(b, absl::kZeroPad2));
      } else {
        out.append(v.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (b < 0x20 || b == 0x7F) {
          absl::StrAppend(&out, "\\u00", absl::Hex(b, absl::kZeroPad2));
        } else {
          out += c;
        }
    }
  }
  if (v.size() < total) absl::StrAppend(&out, "...(", total, " octets)");
}

std::string JsonQuote(std::string_view s) {
  std::string out = "\"";
  AppendJsonEscaped(out, s);
  out += '"';
  return out;
}

}  // namespace rcptguard
