#include "server/service/stream_limits.h"

#include "absl/strings/str_cat.h"
#include "common/text.h"

namespace rcptguard::service {

absl::Status StreamCounter::Open(const std::string& peer) {
  absl::MutexLock lock(&mu_);
  if (total_ >= max_total_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the server has ", total_,
        " streams open, its limit (limits.max_streams); try again later"));
  }
  uint32_t& n = per_peer_[peer];
  if (n >= max_per_peer_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("peer \"", SafeText(peer, 128), "\" has ", n,
                     " streams open, its limit (limits.max_streams_per_peer)"));
  }
  ++n;
  ++total_;
  return absl::OkStatus();
}

void StreamCounter::Close(const std::string& peer) {
  absl::MutexLock lock(&mu_);
  auto it = per_peer_.find(peer);
  if (it == per_peer_.end()) return;
  if (--it->second == 0) per_peer_.erase(it);
  --total_;
}

uint32_t StreamCounter::open_total() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

std::string PeerKey(std::string_view identity, std::string_view grpc_peer) {
  if (!identity.empty()) return std::string(identity);
  std::string_view p = grpc_peer;
  if (p.substr(0, 5) == "ipv4:") {
    p.remove_prefix(5);
    const size_t colon = p.rfind(':');
    if (colon != std::string_view::npos) p = p.substr(0, colon);
    return std::string(p);
  }
  if (p.substr(0, 5) == "ipv6:") {
    p.remove_prefix(5);
    if (!p.empty() && p[0] == '[') {
      const size_t end = p.find(']');
      if (end != std::string_view::npos)
        return std::string(p.substr(1, end - 1));
    }
    return std::string(p);
  }
  return std::string(grpc_peer);
}

}  // namespace rcptguard::service
