// Internal to rg_address, not part of its API (that is address.h): the
// byte classes and limits that the RFC parser (address.cc) and the fast path
// (address_fast.cc) share, so the two apply the same rules.
//
// Thread safety: constants and pure functions only.
#ifndef RCPTGUARD_SERVER_ADDRESS_ADDRESS_CHARS_H_
#define RCPTGUARD_SERVER_ADDRESS_ADDRESS_CHARS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/address/address.h"

namespace rcptguard::address {

// Byte classes. Bytes >= 0x80 (parts of UTF-8 sequences) are classified by
// the callers, never through this table.
enum : uint8_t {
  kAtext = 1 << 0,  // RFC 5322 atext (ASCII part)
  kLdh = 1 << 1,    // letter, digit, hyphen
};

constexpr std::array<uint8_t, 256> MakeClassTable() {
  std::array<uint8_t, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[c] |= kAtext | kLdh;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] |= kAtext | kLdh;
  for (int c = '0'; c <= '9'; ++c) t[c] |= kAtext | kLdh;
  t['-'] |= kAtext | kLdh;
  for (char c : std::string_view("!#$%&'*+/=?^_`{|}~")) {
    t[static_cast<uint8_t>(c)] |= kAtext;
  }
  return t;
}
inline constexpr std::array<uint8_t, 256> kClass = MakeClassTable();

// A name of 255 octets in DNS wire format is at most 253 octets as text
// (without the trailing dot). libidn2 enforces this bound, so the ASCII fast
// path must too, or whether a long name is valid would depend on whether
// one of its labels is an A-label.
inline constexpr size_t kMaxDnsDomainOctets = 253;
static_assert(kMaxDnsDomainOctets <= kMaxDomainOctets);

inline uint8_t Byte(char c) { return static_cast<uint8_t>(c); }
inline bool IsAsciiAtext(char c) { return kClass[Byte(c)] & kAtext; }
inline bool IsLdh(char c) { return kClass[Byte(c)] & kLdh; }
inline char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

}  // namespace rcptguard::address

#endif  // RCPTGUARD_SERVER_ADDRESS_ADDRESS_CHARS_H_
