// Whether an address stays on this machine: shared by the server's
// plaintext guard (insecure_plaintext needs a loopback listen address) and
// the load generator's guard (it only loads local targets).
//
// Thread safety: pure functions.
#ifndef RCPTGUARD_COMMON_NET_H_
#define RCPTGUARD_COMMON_NET_H_

#include <string>
#include <string_view>

namespace rcptguard {

// Whether `host` (no port, brackets allowed) is a loopback name or address:
// 127.0.0.0/8, ::1 (in any spelling), localhost, ip6-localhost.
bool IsLoopbackHost(std::string_view host);

// The host part of a gRPC address or target ("127.0.0.1:50051",
// "ipv4:127.0.0.1:1", "[::1]:50051", "dns:///localhost:50051"); "" for
// unix: addresses.
std::string GrpcTargetHost(std::string_view target);

}  // namespace rcptguard

#endif  // RCPTGUARD_COMMON_NET_H_
