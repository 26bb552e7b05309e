// Client IP addresses and the prefix keys that harvest counters are kept
// under.
//
// An address is parsed once (inet_pton, AF_INET or AF_INET6) into a fixed
// 16-byte form; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is IPv4, so a
// dual-stack edge that reports mapped addresses lands on the same keys as a
// v4-only edge. A PrefixKey is (family, prefix length, masked bytes) packed
// into 20 bytes: it is hashed and compared without any string work.
//
//   std::optional<IpAddress> ip = ParseIp("192.0.2.77");
//   PrefixKey net = MaskTo(*ip, 24);        // 192.0.2.0/24
//   FormatPrefixKey(net) == "192.0.2.0/24";
//
// Everything that does not parse (empty, "abc", "1.2.3.4.5", zone ids such
// as "fe80::1%eth0", text with NUL bytes, anything longer than 45 bytes)
// maps to the single PrefixKey::Unparsable() key.
//
// Thread safety: all functions are pure; all types are values.
#ifndef RCPTGUARD_SERVER_HARVEST_IP_PREFIX_H_
#define RCPTGUARD_SERVER_HARVEST_IP_PREFIX_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"

namespace rcptguard::harvest {

enum class IpFamily : uint8_t { kUnparsable = 0, kV4 = 4, kV6 = 6 };

// Longest text ParseIp looks at: INET6_ADDRSTRLEN - 1 (an IPv6 address with
// an embedded dotted quad). Longer input is refused without copying it.
inline constexpr size_t kMaxIpTextLength = 45;

// A parsed address. IPv4 uses bytes[0..3]; the other bytes are zero.
struct IpAddress {
  IpFamily family = IpFamily::kUnparsable;
  std::array<uint8_t, 16> bytes{};

  // 32 for IPv4, 128 for IPv6.
  int bit_length() const { return family == IpFamily::kV4 ? 32 : 128; }
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// Parses a bare IPv4 or IPv6 address (no brackets, no prefix, no zone).
// Returns nullopt for anything else.
std::optional<IpAddress> ParseIp(std::string_view text);

// (family, prefix length, address masked to that length). Host bits beyond
// prefix_len and the unused bytes of IPv4 are always zero, so equal networks
// compare equal byte for byte.
struct PrefixKey {
  IpFamily family = IpFamily::kUnparsable;
  uint8_t prefix_len = 0;
  uint8_t reserved[2] = {0, 0};
  std::array<uint8_t, 16> bytes{};

  // The one key every unparsable or missing client IP is counted under.
  static PrefixKey Unparsable() { return PrefixKey(); }
  bool unparsable() const { return family == IpFamily::kUnparsable; }

  friend bool operator==(const PrefixKey&, const PrefixKey&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const PrefixKey& k) {
    uint64_t lo, hi;
    std::memcpy(&lo, k.bytes.data(), 8);
    std::memcpy(&hi, k.bytes.data() + 8, 8);
    const uint32_t head = static_cast<uint32_t>(k.family) |
                          static_cast<uint32_t>(k.prefix_len) << 8;
    return H::combine(std::move(h), lo, hi, head);
  }
};
static_assert(sizeof(PrefixKey) == 20, "PrefixKey must stay a packed 20 bytes");

// The network of `ip` at `prefix_len` bits (clamped to the family's length).
PrefixKey MaskTo(const IpAddress& ip, int prefix_len);

// True iff `ip` lies inside `net` (same family, same leading bits).
bool Contains(const PrefixKey& net, const IpAddress& ip);
// True iff the network `inner` lies inside `outer` (inner is at least as
// long a prefix and shares outer's leading bits).
bool Contains(const PrefixKey& outer, const PrefixKey& inner);

// Parses "192.0.2.0/24", "2001:db8::/32", or a bare address (a host
// prefix). An IPv4-mapped network "::ffff:10.0.0.0/104" is IPv4 10.0.0.0/8.
// Host bits must be zero. Errors are InvalidArgument and quote the input,
// e.g. `"10.0.0.1/8": host bits set (did you mean 10.0.0.0/8?)`.
absl::StatusOr<PrefixKey> ParseCidr(std::string_view text);

// "192.0.2.0/24", "2001:db8::/64", or "unparsable".
std::string FormatPrefixKey(const PrefixKey& key);

}  // namespace rcptguard::harvest

#endif  // RCPTGUARD_SERVER_HARVEST_IP_PREFIX_H_
