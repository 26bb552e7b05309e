// Bounds on what open ValidateStream calls can make the server hold.
//
// A client may send requests on a stream without reading the answers; the
// server then holds the answers. StreamCounter caps the number of open
// streams per peer and in total; BufferBudget counts the octets of answers
// waiting in every stream, so each stream can stop reading while the
// server-wide total is over its budget. Together with the per-stream cap
// (limits.max_stream_buffer_bytes) they bound the memory of waiting answers
// at about max_buffered_response_bytes + max_streams * (one answer).
//
// Thread safety: both classes are safe to call from any thread.
#ifndef RCPTGUARD_SERVER_SERVICE_STREAM_LIMITS_H_
#define RCPTGUARD_SERVER_SERVICE_STREAM_LIMITS_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/config/config.h"

namespace rcptguard::service {

// limits.* of the config that bound streams (config.proto documents them).
// The initial values are the config's defaults (config.h).
struct StreamLimits {
  // Octets of answers one stream may have waiting; then it stops reading.
  uint64_t max_stream_buffer_bytes = kDefaultMaxStreamBufferBytes;
  // Octets of waiting answers of all streams together.
  uint64_t max_buffered_response_bytes = kDefaultMaxBufferedResponseBytes;
  uint32_t max_streams_per_peer = kDefaultMaxStreamsPerPeer;
  uint32_t max_streams = kDefaultMaxStreams;
};

class StreamCounter {
 public:
  StreamCounter(uint32_t max_per_peer, uint32_t max_total)
      : max_per_peer_(max_per_peer), max_total_(max_total) {}

  // Opens a stream for `peer`: OK, or ResourceExhausted naming the limit.
  // Every successful Open() must be matched by one Close() of the same peer.
  absl::Status Open(const std::string& peer);
  void Close(const std::string& peer);

  uint32_t open_total() const;

 private:
  const uint32_t max_per_peer_;
  const uint32_t max_total_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, uint32_t> per_peer_ ABSL_GUARDED_BY(mu_);
  uint32_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

class BufferBudget {
 public:
  explicit BufferBudget(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  void Add(uint64_t bytes) {
    used_.fetch_add(bytes, std::memory_order_relaxed);
  }
  void Remove(uint64_t bytes) {
    used_.fetch_sub(bytes, std::memory_order_relaxed);
  }
  bool over() const {
    return used_.load(std::memory_order_relaxed) >= max_bytes_;
  }
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }

 private:
  const uint64_t max_bytes_;
  std::atomic<uint64_t> used_{0};
};

// The peer key streams are counted under: `identity` when not empty (the
// certificate identity under mutual TLS), else the host part of gRPC's
// peer string ("ipv4:192.0.2.1:5555" -> "192.0.2.1", "ipv6:[::1]:5" ->
// "::1"), else the whole peer string.
std::string PeerKey(std::string_view identity, std::string_view grpc_peer);

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_STREAM_LIMITS_H_
