#include "server/address/address.h"

#include <idn2.h>
#include <unicase.h>
#include <uninorm.h>
#include <unistr.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "server/address/address_chars.h"

namespace rcptguard::address {
namespace {

absl::Status Invalid(std::string_view message) {
  return absl::InvalidArgumentError(ToAbsl(message));
}

// The character as it should appear inside '...' in an error message:
// printable ASCII as is, anything else as \xNN.
std::string Printable(char c) {
  if (Byte(c) >= 0x20 && Byte(c) < 0x7f) return std::string(1, c);
  static constexpr char kHex[] = "0123456789abcdef";
  return {'\\', 'x', kHex[Byte(c) >> 4], kHex[Byte(c) & 0xf]};
}

absl::Status InvalidChar(char c, std::string_view where) {
  return Invalid("invalid character '" + Printable(c) + "' in " +
                 std::string(where));
}

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (Byte(c) >= 0x80) return false;
  }
  return true;
}

// Only space and tab count as surrounding whitespace; CR, LF and the other
// controls are errors wherever they appear.
std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Rejects C0 controls, DEL, malformed UTF-8 and C1 controls (U+0080..U+009F).
absl::Status CheckEncoding(std::string_view s, std::string_view what) {
  bool ascii = true;
  for (char c : s) {
    const uint8_t b = Byte(c);
    if (b < 0x20 || b == 0x7f) {
      return Invalid("control character in " + std::string(what));
    }
    if (b >= 0x80) ascii = false;
  }
  if (ascii) return absl::OkStatus();
  if (u8_check(reinterpret_cast<const uint8_t*>(s.data()), s.size()) !=
      nullptr) {
    return Invalid("invalid UTF-8");
  }
  // In valid UTF-8, 0xC2 is always a lead byte, and C1 controls are exactly
  // the sequences C2 80..C2 9F.
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (Byte(s[i]) == 0xc2 && Byte(s[i + 1]) < 0xa0) {
      return Invalid("control character in " + std::string(what));
    }
  }
  return absl::OkStatus();
}

// Appends the full case folding of `s`, in NFC, to *out. `s` is valid UTF-8
// without controls. For ASCII, full case folding is exactly A-Z -> a-z and
// NFC is the identity, so the fast path gives what u8_casefold would.
absl::Status AppendFolded(std::string_view s, std::string* out) {
  if (IsAscii(s)) {
    const size_t base = out->size();
    out->resize(base + s.size());
    for (size_t i = 0; i < s.size(); ++i) (*out)[base + i] = AsciiLower(s[i]);
    return absl::OkStatus();
  }
  // u8_casefold with a normalization form computes nf(toCasefold(NFD(s))),
  // the Unicode canonical caseless match key, so NFC and NFD input agree.
  uint8_t buf[256];
  size_t len = sizeof(buf);
  uint8_t* folded =
      u8_casefold(reinterpret_cast<const uint8_t*>(s.data()), s.size(),
                  /*iso639_language=*/nullptr, UNINORM_NFC, buf, &len);
  if (folded == nullptr) return Invalid("invalid UTF-8");
  out->append(reinterpret_cast<const char*>(folded), len);
  if (folded != buf) free(folded);
  return absl::OkStatus();
}

// RFC 5322 dot-atom, with RFC 6531 UTF-8 (any non-ASCII character) in atext.
bool IsDotAtom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (Byte(c) < 0x80 && !IsAsciiAtext(c)) {
      return false;
    }
    prev = c;
  }
  return true;
}

// Validates an unquoted local part, naming the first problem found.
absl::Status CheckDotAtom(std::string_view s) {
  if (s.front() == '.') return Invalid("local part begins with '.'");
  if (s.back() == '.') return Invalid("local part ends with '.'");
  char prev = 0;
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return Invalid("consecutive dots in local part");
    } else if (Byte(c) < 0x80 && !IsAsciiAtext(c)) {
      return InvalidChar(c, "local part");
    }
    prev = c;
  }
  return absl::OkStatus();
}

// The canonical form of a folded local part: as is if it is a dot-atom,
// else quoted (with '"' and '\\' escaped).
void Requote(std::string folded, std::string* out) {
  if (IsDotAtom(folded)) {
    *out = std::move(folded);
    return;
  }
  out->reserve(folded.size() + 4);
  out->push_back('"');
  for (char c : folded) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

// Normalizes a non-empty local part as received (encoding already checked).
absl::Status NormalizeLocal(std::string_view received, std::string* out) {
  std::string folded;
  if (received.front() != '"') {
    RG_RETURN_IF_ERROR(CheckDotAtom(received));
    RG_RETURN_IF_ERROR(AppendFolded(received, &folded));
    // Folding can make a dot-atom need quotes: U+037E GREEK QUESTION MARK
    // is canonically ';'. Quoted, the result parses back to itself.
    Requote(std::move(folded), out);
    return absl::OkStatus();
  }

  // Quoted string (RFC 5321 qtextSMTP / quoted-pairSMTP, RFC 6531 UTF-8).
  // Controls were rejected already, so every other character is allowed
  // either as qtext or escaped.
  std::string content;
  content.reserve(received.size());
  size_t i = 1;
  for (;; ++i) {
    if (i >= received.size()) return Invalid("unbalanced quotes");
    char c = received[i];
    if (c == '"') break;
    if (c == '\\') {
      // A backslash escapes the next byte; a multi-byte character's
      // remaining bytes are copied by the following iterations.
      if (++i >= received.size()) return Invalid("unbalanced quotes");
      c = received[i];
    }
    content.push_back(c);
  }
  if (i + 1 != received.size()) return Invalid("text after quoted local part");
  if (content.empty()) return Invalid("empty quoted local part");

  RG_RETURN_IF_ERROR(AppendFolded(content, &folded));
  Requote(std::move(folded), out);
  return absl::OkStatus();
}

// Checks a lower-case ASCII domain without trailing dot: the rules every
// normalized domain satisfies, whichever path produced it.
absl::Status CheckAsciiDomain(std::string_view d) {
  if (d.size() > kMaxDnsDomainOctets) {
    return Invalid("domain exceeds 253 octets");
  }
  size_t labels = 0;
  std::string_view label;
  size_t start = 0;
  while (true) {
    const size_t dot = d.find('.', start);
    label =
        d.substr(start, dot == std::string_view::npos ? std::string_view::npos
                                                      : dot - start);
    ++labels;
    if (label.empty()) return Invalid("empty domain label");
    if (label.size() > 63) return Invalid("domain label exceeds 63 octets");
    for (char c : label) {
      if (!IsLdh(c)) return InvalidChar(c, "domain");
    }
    if (label.front() == '-' || label.back() == '-') {
      return Invalid("domain label begins or ends with '-'");
    }
    // RFC 5891 4.2.3.1: "??--" is reserved for A-labels (as UTS #46
    // CheckHyphens, which libidn2 applies).
    if (label.size() >= 4 && label[2] == '-' && label[3] == '-' &&
        !label.starts_with("xn--")) {
      return Invalid("domain label has '--' in third and fourth position");
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (labels < 2) return Invalid("domain needs at least two labels");
  // `label` is the top-level label. No TLD is all-numeric (RFC 3696 2), and
  // this catches IPv4 addresses written without brackets.
  bool numeric = true;
  for (char c : label) numeric = numeric && c >= '0' && c <= '9';
  if (numeric) return Invalid("top-level domain label is all-numeric");
  return absl::OkStatus();
}

// True if `s` starts with "xn--" in any case.
bool StartsWithAce(std::string_view s) {
  return s.size() >= 4 && AsciiLower(s[0]) == 'x' && AsciiLower(s[1]) == 'n' &&
         s[2] == '-' && s[3] == '-';
}

// True if a label starts with "xn--" (in any case): it claims to be an
// A-label, whose Punycode only libidn2 can check.
bool HasAceLabel(std::string_view d) {
  size_t start = 0;
  while (true) {
    if (StartsWithAce(d.substr(start))) return true;
    const size_t dot = d.find('.', start);
    if (dot == std::string_view::npos) return false;
    start = dot + 1;
  }
}

struct IdnFree {
  void operator()(char* p) const { idn2_free(p); }
};

// Normalizes a domain whose encoding is already checked and that has no
// surrounding blanks.
absl::Status NormalizeCheckedDomain(std::string_view d, std::string* out) {
  if (d.empty()) return Invalid("empty domain");
  if (d.front() == '[') return Invalid("address literals are not supported");
  const bool dropped_dot = d.back() == '.';
  if (dropped_dot) d.remove_suffix(1);
  if (d.empty()) return Invalid("empty domain label");

  const bool ascii = IsAscii(d);
  std::string lower;
  lower.resize(d.size());
  for (size_t i = 0; i < d.size(); ++i) {
    const char c = d[i];
    // ASCII characters are checked here, before libidn2 sees them, so the
    // same mistake gives the same message on both paths.
    if (Byte(c) < 0x80 && c != '.' && !IsLdh(c)) {
      return InvalidChar(c, "domain");
    }
    lower[i] = AsciiLower(c);
  }

  if (ascii && !HasAceLabel(lower)) {
    // Fast path: for LDH input, libidn2's UTS #46 processing only
    // lower-cases, which is what was done above.
    RG_RETURN_IF_ERROR(CheckAsciiDomain(lower));
    *out = std::move(lower);
    return absl::OkStatus();
  }

  // IDNA 2008 with UTS #46 non-transitional mapping (so `ß` stays `ß` and
  // becomes an A-label of its own). IDN2_USE_STD3_ASCII_RULES is not used:
  // libidn2 2.3.3 then silently drops disallowed characters ("a_b" -> "ab")
  // instead of failing; the LDH check below does that job.
  char* converted = nullptr;
  const int rc = idn2_to_ascii_8z(lower.c_str(), &converted,
                                  IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
  std::unique_ptr<char, IdnFree> holder(converted);
  if (rc == IDN2_TOO_BIG_DOMAIN) return Invalid("domain exceeds 253 octets");
  // libidn2's Punycode encoder writes into a 63-octet label buffer, so
  // "output too big" means the A-label would be too long.
  if (rc == IDN2_TOO_BIG_LABEL || rc == IDN2_PUNYCODE_BIG_OUTPUT) {
    return Invalid("domain label exceeds 63 octets");
  }
  if (rc != IDN2_OK) {
    return Invalid(std::string("invalid domain: ") + idn2_strerror(rc));
  }
  std::string_view result(converted);
  // A trailing ideographic full stop (U+3002 etc.) maps to '.'; it counts as
  // the one trailing dot that is dropped.
  if (!dropped_dot && !result.empty() && result.back() == '.') {
    result.remove_suffix(1);
  }
  if (result.empty()) return Invalid("empty domain label");
  RG_RETURN_IF_ERROR(CheckAsciiDomain(result));
  out->assign(result);
  return absl::OkStatus();
}

// Skips an RFC 5321 source route (`@a,@b:`) at the start of `m`, returning
// what follows it. Route hosts are only checked for shape: they are ignored.
absl::StatusOr<std::string_view> SkipSourceRoute(std::string_view m) {
  const absl::Status bad = Invalid("invalid source route");
  size_t i = 0;
  while (true) {
    if (i >= m.size() || m[i] != '@') return bad;
    const size_t start = ++i;
    if (i < m.size() && m[i] == '[') {
      const size_t close = m.find(']', i);
      if (close == std::string_view::npos) return bad;
      i = close + 1;
    } else {
      while (i < m.size() &&
             (Byte(m[i]) >= 0x80 || IsLdh(m[i]) || m[i] == '.')) {
        ++i;
      }
    }
    if (i == start || i >= m.size()) return bad;
    if (m[i] == ':') return m.substr(i + 1);
    if (m[i] != ',') return bad;
    ++i;
  }
}

// Returns the index of the last '@' outside a quoted string.
absl::StatusOr<size_t> FindSplit(std::string_view m) {
  bool quoted = false;
  size_t at = std::string_view::npos;
  for (size_t i = 0; i < m.size(); ++i) {
    const char c = m[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '@') {
      at = i;
    }
  }
  if (quoted) return Invalid("unbalanced quotes");
  if (at == std::string_view::npos) return Invalid("missing @");
  return at;
}

}  // namespace

std::string Address::ToString() const {
  std::string s;
  s.reserve(local.size() + 1 + domain.size());
  s.append(local).push_back('@');
  s.append(domain);
  return s;
}

absl::StatusOr<Address> ParseAddress(std::string_view raw) {
  if (raw.size() > kMaxRawInputOctets) {
    return Invalid("input exceeds 1024 octets");
  }
  std::string_view m = TrimBlanks(raw);
  if (m.empty()) return Invalid("empty address");
  RG_RETURN_IF_ERROR(CheckEncoding(m, "address"));

  if (m.front() == '<') {
    if (m.size() < 2 || m.back() != '>') {
      return Invalid("unbalanced angle brackets");
    }
    m = TrimBlanks(m.substr(1, m.size() - 2));
  } else if (m.back() == '>') {
    return Invalid("unbalanced angle brackets");
  }
  if (!m.empty() && m.front() == '@' && m.find(':') != std::string_view::npos) {
    RG_ASSIGN_OR_RETURN(m, SkipSourceRoute(m));
  }
  if (m.empty()) return Invalid("empty address");

  RG_ASSIGN_OR_RETURN(const size_t at, FindSplit(m));
  const std::string_view local = m.substr(0, at);
  const std::string_view domain = m.substr(at + 1);
  if (local.empty()) return Invalid("empty local part");
  if (domain.empty()) return Invalid("empty domain");
  if (local.size() > kMaxLocalPartOctets) {
    return Invalid("local part exceeds 64 octets");
  }
  if (domain.front() == '[') {
    return Invalid("address literals are not supported");
  }

  Address address;
  RG_RETURN_IF_ERROR(NormalizeLocal(local, &address.local));
  RG_RETURN_IF_ERROR(NormalizeCheckedDomain(domain, &address.domain));
  // The local part as received, the domain in the ASCII form it has in DNS.
  if (local.size() + 1 + address.domain.size() > kMaxAddressOctets) {
    return Invalid("address exceeds 254 octets");
  }
  return address;
}

absl::StatusOr<std::string> NormalizeDomain(std::string_view domain) {
  if (domain.size() > kMaxRawInputOctets) {
    return Invalid("input exceeds 1024 octets");
  }
  domain = TrimBlanks(domain);
  if (domain.empty()) return Invalid("empty domain");
  RG_RETURN_IF_ERROR(CheckEncoding(domain, "domain"));
  std::string out;
  RG_RETURN_IF_ERROR(NormalizeCheckedDomain(domain, &out));
  return out;
}

std::string_view StripSubaddress(std::string_view local,
                                 std::string_view delimiters) {
  if (delimiters.empty() || local.empty() || local.front() == '"') {
    return local;
  }
  size_t cut = std::string_view::npos;
  if (IsAscii(delimiters)) {
    // An ASCII byte never occurs inside a UTF-8 multi-byte sequence.
    // (Not find_first_of: libstdc++ calls memchr over `delimiters` once per
    // byte of `local`, which showed in profiles of every lookup.)
    for (size_t i = 0; i < local.size() && cut == std::string_view::npos; ++i) {
      for (char d : delimiters) {
        if (local[i] == d) {
          cut = i;
          break;
        }
      }
    }
  } else {
    const bool valid_utf8 =
        u8_check(reinterpret_cast<const uint8_t*>(delimiters.data()),
                 delimiters.size()) == nullptr;
    // Search for each delimiter character as a whole UTF-8 sequence, so a
    // cut never splits a character. If `delimiters` is not valid UTF-8,
    // only its ASCII characters are used.
    for (size_t i = 0; i < delimiters.size();) {
      const uint8_t b = Byte(delimiters[i]);
      size_t n = 1;
      if (b >= 0xf0) {
        n = 4;
      } else if (b >= 0xe0) {
        n = 3;
      } else if (b >= 0xc0) {
        n = 2;
      }
      if (b < 0x80 || valid_utf8) {
        const size_t pos = local.find(delimiters.substr(i, n));
        if (pos < cut) cut = pos;
      }
      i += valid_utf8 ? n : 1;
    }
  }
  if (cut == std::string_view::npos || cut == 0) return local;
  return local.substr(0, cut);
}

bool IsPostmaster(std::string_view normalized_local) {
  constexpr std::string_view kPostmaster = "postmaster";
  if (normalized_local.size() != kPostmaster.size()) return false;
  for (size_t i = 0; i < kPostmaster.size(); ++i) {
    if (AsciiLower(normalized_local[i]) != kPostmaster[i]) return false;
  }
  return true;
}

}  // namespace rcptguard::address
