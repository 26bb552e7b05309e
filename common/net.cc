#include "common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "common/strings.h"

namespace rcptguard {

bool IsLoopbackHost(std::string_view host_view) {
  std::string host(host_view);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  host = absl::AsciiStrToLower(host);
  if (host == "localhost" || host == "ip6-localhost") return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

std::string GrpcTargetHost(std::string_view target) {
  std::string t(target);
  if (absl::StartsWith(t, "unix:") || absl::StartsWith(t, "unix-abstract:")) {
    return "";
  }
  for (std::string_view scheme : {"dns:///", "dns:", "ipv4:", "ipv6:"}) {
    if (absl::StartsWith(t, ToAbsl(scheme))) {
      t = t.substr(scheme.size());
      break;
    }
  }
  if (!t.empty() && t.front() == '[') {
    const size_t close = t.find(']');
    return close == std::string::npos ? t : t.substr(0, close + 1);
  }
  const size_t colon = t.rfind(':');
  return colon == std::string::npos ? t : t.substr(0, colon);
}

}  // namespace rcptguard
