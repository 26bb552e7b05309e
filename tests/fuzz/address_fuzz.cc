// libFuzzer target for server/address: ParseAddress, NormalizeDomain,
// StripSubaddress and IsPostmaster on arbitrary bytes.
//
// Invariants checked (a violation aborts, which libFuzzer reports):
//   - a parsed address has a non-empty local part and a lower-case LDH
//     domain within the limits, which NormalizeDomain leaves unchanged;
//   - normalizing is idempotent: ParseAddress(a.ToString()) == a, with or
//     without angle brackets. The only allowed exception is an address whose
//     local part grew past a limit through case folding (e.g. `ΐ`, `İ`),
//     since the limits apply to the local part as received;
//   - ASCII case in the input never matters;
//   - the ASCII fast path of NormalizeDomain agrees with libidn2;
//   - NormalizeSimpleAddress (the fast path) answers only what ParseAddress
//     answers;
//   - StripSubaddress returns a non-empty prefix that is valid UTF-8 and
//     never cuts a quoted local part.
#include <idn2.h>
#include <unistr.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>

#include "server/address/address.h"

namespace {

using rcptguard::address::Address;
using rcptguard::address::IsPostmaster;
using rcptguard::address::kMaxAddressOctets;
using rcptguard::address::kMaxDomainOctets;
using rcptguard::address::kMaxLocalPartOctets;
using rcptguard::address::NormalizeDomain;
using rcptguard::address::NormalizeSimpleAddress;
using rcptguard::address::ParseAddress;
using rcptguard::address::StripSubaddress;

void Check(bool ok, const char* what, std::string_view input) {
  if (ok) return;
  std::fprintf(stderr, "invariant violated: %s\ninput: ", what);
  for (unsigned char c : input) std::fprintf(stderr, "\\x%02x", c);
  std::fprintf(stderr, "\n");
  std::abort();
}

bool ValidUtf8(std::string_view s) {
  return u8_check(reinterpret_cast<const uint8_t*>(s.data()), s.size()) ==
         nullptr;
}

bool IsAscii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

std::string AsciiUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

bool IsNormalizedDomain(std::string_view d) {
  if (d.empty() || d.size() > kMaxDomainOctets) return false;
  for (char c : d) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '.')) {
      return false;
    }
  }
  return d.front() != '.' && d.back() != '.' &&
         d.find("..") == std::string_view::npos;
}

void CheckAddress(std::string_view input) {
  absl::StatusOr<Address> a = ParseAddress(input);
  std::string simple;
  size_t at = 0;
  if (NormalizeSimpleAddress(input, &simple, &at)) {
    Check(a.ok() && simple == a->ToString() && at == a->local.size(),
          "the fast path disagrees with ParseAddress", input);
  }
  if (!a.ok()) {
    Check(a.status().code() == absl::StatusCode::kInvalidArgument,
          "error is not InvalidArgument", input);
    Check(!ParseAddress(AsciiUpper(input)).ok(),
          "ASCII upper case turned an error into an address", input);
    return;
  }
  Check(!a->local.empty(), "empty local part", input);
  Check(ValidUtf8(a->local), "local part not UTF-8", input);
  Check(IsNormalizedDomain(a->domain), "domain not normalized", input);
  absl::StatusOr<std::string> d = NormalizeDomain(a->domain);
  Check(d.ok() && *d == a->domain, "NormalizeDomain changes domain", input);
  if (a->local.front() == '"') {
    Check(a->local.size() >= 3 && a->local.back() == '"',
          "bad quoted local part", input);
  }

  const std::string s = a->ToString();
  absl::StatusOr<Address> again = ParseAddress(s);
  if (again.ok()) {
    Check(*again == *a, "not idempotent", input);
  } else {
    Check(a->local.size() > kMaxLocalPartOctets || s.size() > kMaxAddressOctets,
          "normalized address does not parse", input);
  }
  absl::StatusOr<Address> bracketed = ParseAddress("<" + s + ">");
  Check(bracketed.ok() == again.ok() && (!again.ok() || *bracketed == *a),
        "angle brackets change the result", input);

  absl::StatusOr<Address> upper = ParseAddress(AsciiUpper(input));
  Check(upper.ok() && *upper == *a, "ASCII case changes the result", input);

  Check(IsPostmaster(a->local) == (a->local == "postmaster"),
        "IsPostmaster disagrees", input);
  for (std::string_view delimiters :
       {"+", "+-", "-=", "\xc3\xbc+", "\xc2\xa7", "", "\xc3"}) {
    std::string_view stripped = StripSubaddress(a->local, delimiters);
    Check(!stripped.empty(), "subaddress stripping left nothing", input);
    Check(std::string_view(a->local).substr(0, stripped.size()) == stripped,
          "stripped local part is not a prefix", input);
    Check(ValidUtf8(stripped), "stripped local part not UTF-8", input);
    if (a->local.front() == '"' || delimiters.empty()) {
      Check(stripped == a->local, "local part cut when it must not be", input);
    }
  }
}

void CheckDomain(std::string_view input) {
  absl::StatusOr<std::string> d = NormalizeDomain(input);
  if (!d.ok()) return;
  Check(IsNormalizedDomain(*d), "NormalizeDomain output not normalized", input);
  absl::StatusOr<std::string> again = NormalizeDomain(*d);
  Check(again.ok() && *again == *d, "NormalizeDomain not idempotent", input);

  // For ASCII input, the result is exactly what libidn2 makes of it.
  if (IsAscii(input) && input.find('\0') == std::string_view::npos) {
    std::string_view t = input;
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) {
      t.remove_prefix(1);
    }
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) {
      t.remove_suffix(1);
    }
    if (!t.empty() && t.back() == '.') t.remove_suffix(1);
    std::string z(t);
    char* out = nullptr;
    int rc = idn2_to_ascii_8z(z.c_str(), &out,
                              IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    Check(rc == IDN2_OK && *d == out, "ASCII fast path disagrees with libidn2",
          input);
    idn2_free(out);
  }
}

// Byte-level mutation rarely forms UTF-8, so each input is also read as a
// string of tokens from this alphabet: the characters whose folding,
// composition or IDNA mapping is unusual, and the address syntax around them.
constexpr std::string_view kAlphabet[] = {
    "a",         "Z",      "x",      "n",        "e",      "I",      "i",
    "0",         "1",      ".",      "@",        "\"",     "\\",     " ",
    "+",         "-",      "_",      "<",        ">",      ":",      ",",
    "[",         "]",      "xn--",   "com",      "\t",     "ß",      "ẞ",
    "İ",         "ı",      "ΐ",      "Σ",        "ς",      "ᾳ",      "ῼ",
    "ﬃ",         "ﬓ",      "ǅ",      "K",        "Å",      "é",      "ü",
    "Ü",         "\u0301", "\u0308", "\u0307",   "\u0345", "\u0338", "。",
    "．",        "Ａ",     "\u00a0", "\u200d",   "≠",      "⑴",      "ﬀ",
    "\u05d0",    "\u0627", "中",     "\xc2\x85", "\x7f",   "\xff",   "\xc3",
    "postmaster"};

std::string FromTokens(std::string_view input) {
  std::string out;
  for (unsigned char c : input) {
    out.append(kAlphabet[c % std::size(kAlphabet)]);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckAddress(input);
  CheckDomain(input);
  if (size <= 100) {
    // Reach the local-part and domain code with fewer mutations.
    CheckAddress(std::string(input) + "@example.com");
    CheckAddress("user@" + std::string(input));
    const std::string tokens = FromTokens(input);
    CheckAddress(tokens);
    CheckDomain(tokens);
    CheckAddress(tokens + "@example.com");
    CheckAddress("user@" + tokens);
  }
  return 0;
}
