#include "server/harvest/ip_prefix.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace rcptguard::harvest {
namespace {

// Input echoed in an error message: escaped, and cut so a hostile config
// value cannot flood a log line.
std::string Quote(std::string_view text) {
  constexpr size_t kMaxEcho = 64;
  std::string out = "\"";
  out += absl::CHexEscape(
      std::string(text.substr(0, std::min(text.size(), kMaxEcho))));
  if (text.size() > kMaxEcho) out += "...";
  out += "\"";
  return out;
}

bool IsV4Mapped(const uint8_t* b) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0,    0,
                                          0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(b, kPrefix, sizeof(kPrefix)) == 0;
}

// Parses a decimal prefix length of 1 to 3 digits.
std::optional<int> ParseLength(std::string_view text) {
  if (text.empty() || text.size() > 3) return std::nullopt;
  int n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

std::optional<IpAddress> ParseIp(std::string_view text) {
  if (text.empty() || text.size() > kMaxIpTextLength) return std::nullopt;
  // inet_pton wants a NUL-terminated string; an embedded NUL would make it
  // parse a prefix of the input, so refuse it.
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) {
    return std::nullopt;
  }
  char buf[kMaxIpTextLength + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';

  IpAddress ip;
  if (std::memchr(buf, ':', text.size()) != nullptr) {
    in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) != 1) return std::nullopt;
    const auto* b = reinterpret_cast<const uint8_t*>(&a6);
    if (IsV4Mapped(b)) {
      ip.family = IpFamily::kV4;
      std::memcpy(ip.bytes.data(), b + 12, 4);
    } else {
      ip.family = IpFamily::kV6;
      std::memcpy(ip.bytes.data(), b, 16);
    }
    return ip;
  }
  in_addr a4;
  if (inet_pton(AF_INET, buf, &a4) != 1) return std::nullopt;
  ip.family = IpFamily::kV4;
  std::memcpy(ip.bytes.data(), &a4, 4);
  return ip;
}

PrefixKey MaskTo(const IpAddress& ip, int prefix_len) {
  PrefixKey key;
  if (ip.family == IpFamily::kUnparsable) return key;
  const int bits = std::clamp(prefix_len, 0, ip.bit_length());
  key.family = ip.family;
  key.prefix_len = static_cast<uint8_t>(bits);
  const int full = bits / 8;
  std::memcpy(key.bytes.data(), ip.bytes.data(), full);
  if (bits % 8 != 0) {
    key.bytes[full] =
        ip.bytes[full] & static_cast<uint8_t>(0xff << (8 - bits % 8));
  }
  return key;
}

bool Contains(const PrefixKey& net, const IpAddress& ip) {
  if (net.unparsable() || net.family != ip.family) return false;
  return MaskTo(ip, net.prefix_len) == net;
}

bool Contains(const PrefixKey& outer, const PrefixKey& inner) {
  if (outer.unparsable() || outer.family != inner.family ||
      inner.prefix_len < outer.prefix_len) {
    return false;
  }
  IpAddress as_ip;
  as_ip.family = inner.family;
  as_ip.bytes = inner.bytes;
  return MaskTo(as_ip, outer.prefix_len) == outer;
}

absl::StatusOr<PrefixKey> ParseCidr(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string_view addr_text = text.substr(0, slash);
  const std::optional<IpAddress> ip = ParseIp(addr_text);
  if (!ip.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), " is not an IP address or CIDR"));
  }
  const bool v6_text = addr_text.find(':') != std::string_view::npos;
  const int text_bits = v6_text ? 128 : 32;
  int len = text_bits;
  if (slash != std::string_view::npos) {
    const std::optional<int> parsed = ParseLength(text.substr(slash + 1));
    if (!parsed.has_value() || *parsed > text_bits) {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(text), ": prefix length must be between 0 and ", text_bits));
    }
    len = *parsed;
  }
  if (v6_text && ip->family == IpFamily::kV4) {
    if (len < 96) {
      return absl::InvalidArgumentError(absl::StrCat(
          Quote(text),
          ": an IPv4-mapped network needs a prefix length of at least 96"));
    }
    len -= 96;
  }
  const PrefixKey key = MaskTo(*ip, len);
  if (key.bytes != ip->bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quote(text), ": host bits set (did you mean ",
                     FormatPrefixKey(key), "?)"));
  }
  return key;
}

std::string FormatPrefixKey(const PrefixKey& key) {
  if (key.unparsable()) return "unparsable";
  char buf[INET6_ADDRSTRLEN];
  const int af = key.family == IpFamily::kV4 ? AF_INET : AF_INET6;
  if (inet_ntop(af, key.bytes.data(), buf, sizeof(buf)) == nullptr) {
    return "unparsable";
  }
  return absl::StrCat(buf, "/", static_cast<int>(key.prefix_len));
}

}  // namespace rcptguard::harvest
