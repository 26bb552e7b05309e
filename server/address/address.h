// Parsing and normalizing one mail address.
//
// The same function normalizes directory entries (when a directory is built)
// and recipients (when they are looked up), so the two always agree: a
// recipient matches an entry iff their normalized forms are byte-equal.
//
// Normalization (documented in docs/address-rules.md):
//   - surrounding spaces and tabs and one pair of angle brackets are
//     removed; the input must be UTF-8 without control characters (C0, DEL,
//     C1) anywhere;
//   - an RFC 5321 source route (`<@a,@b:user@example.com>`) is ignored, as
//     RFC 5321 section 3.6.1 / C says a receiver SHOULD;
//   - the domain is lower-cased, a trailing dot removed, and an IDN U-label
//     domain converted to its ASCII A-label form (libidn2, IDNA 2008
//     non-transitional), so `bücher.example` and `xn--bcher-kva.example` are
//     the same domain;
//   - address literals (`user@[192.0.2.1]`) are rejected as malformed:
//     rcptguard serves named domains only;
//   - the local part is validated (RFC 5321 dot-string or quoted-string,
//     RFC 6531 UTF-8 allowed), quotes that are not needed are dropped
//     (`"john"@x` == `john@x`), needless backslash escapes are dropped, and
//     the result is Unicode NFC-normalized and case-folded (full folding, so
//     `ß` becomes `ss`, as Postfix folds its lookup keys);
//   - limits: at most 64 octets of local part (as received, RFC 5321), at
//     most 253 octets of domain in A-label form (the DNS limit; RFC 5321's
//     255 counts the wire format), at most 254 octets of address (local
//     part as received, `@`, domain in A-label form).
//
// Thread safety: every function here is pure and safe to call concurrently.
#ifndef RCPTGUARD_SERVER_ADDRESS_ADDRESS_H_
#define RCPTGUARD_SERVER_ADDRESS_ADDRESS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rcptguard::address {

inline constexpr size_t kMaxLocalPartOctets = 64;
// RFC 5321's bound. NormalizeDomain enforces the tighter DNS bound of 253
// octets of text (255 on the wire), as libidn2 does.
inline constexpr size_t kMaxDomainOctets = 255;
inline constexpr size_t kMaxAddressOctets = 254;
// Anything longer than this is refused before any parsing work is done.
inline constexpr size_t kMaxRawInputOctets = 1024;

// A normalized address. `local` is the canonical local part (quoted only if
// its content needs quoting, e.g. `"john smith"`), `domain` is ASCII.
// Normalizing is idempotent: ParseAddress(a.ToString()) == a, except in the
// rare case where case folding made `local` longer than
// kMaxLocalPartOctets (`İ` folds to 3 octets), since that limit applies to
// the local part as received.
struct Address {
  std::string local;
  std::string domain;

  // "local@domain".
  std::string ToString() const;
  friend bool operator==(const Address&, const Address&) = default;
};

// Parses and normalizes `raw`. Errors are InvalidArgument with a message
// that names what is wrong, e.g. "local part exceeds 64 octets".
absl::StatusOr<Address> ParseAddress(std::string_view raw);

// Room the buffer form of NormalizeSimpleAddress needs.
inline constexpr size_t kSimpleAddressBuffer = 256;

// The fast path of ParseAddress for the form almost every lookup has:
// printable ASCII, one '@', a dot-atom local part and an LDH domain with no
// A-label. When it answers, out[0..returned length) holds exactly
// ParseAddress(raw)->ToString() and *at the index of its '@'; it returns 0
// otherwise, which says nothing about validity: call ParseAddress, which
// gives the answer or the error. `out` must have room for
// kSimpleAddressBuffer octets (it may be written past the answer). Inputs of
// up to 64 octets are checked 16 octets at a time with SSE2 where the CPU
// has it (every x86-64), longer ones byte by byte.
//
// If `local_symbols` is given, it receives positions (bit i for octet i of
// the answer) that include every local-part octet other than a letter or
// digit, for callers that look for such octets (subaddress delimiters).
// Every bit is set when the positions are not known (inputs over 64
// octets, no SSE2).
size_t NormalizeSimpleAddress(std::string_view raw, char* out, size_t* at,
                              uint64_t* local_symbols = nullptr);
// The same into a string; false when the form is not simple.
bool NormalizeSimpleAddress(std::string_view raw, std::string* out, size_t* at);

// Normalizes a bare domain name (config entries, LDAP domains, the domain
// part of an address): trims, lower-cases, drops one trailing dot, converts
// U-labels to A-labels, and checks LDH label syntax and lengths.
absl::StatusOr<std::string> NormalizeDomain(std::string_view domain);

// Returns the local part without its subaddress: cut at the first character
// that is one of `delimiters` (several may be configured, e.g. "+-").
// Returns `local` unchanged when `delimiters` is empty, when no delimiter
// occurs, or when cutting would leave an empty local part ("+tag").
// `local` must already be normalized; a quoted local part is never cut.
std::string_view StripSubaddress(std::string_view local,
                                 std::string_view delimiters);

// True for the local part "postmaster" (any case), which RFC 5321 section
// 4.5.1 requires every served domain to accept.
bool IsPostmaster(std::string_view normalized_local);

}  // namespace rcptguard::address

#endif  // RCPTGUARD_SERVER_ADDRESS_ADDRESS_H_
