// A minimal driver for hiredis 0.14's async API on a thread of our own: the
// connection's socket is polled by the owner's loop (Poll), not by an
// event library. Replies come back to std::function callbacks, in order.
//
//   RedisClient redis;
//   RETURN_IF_ERROR(redis.Connect("unix:/run/redis.sock"));
//   redis.Command({"PING"}, [](const redisReply* r) { ... });
//   while (...) redis.Poll(absl::Milliseconds(50), wake_fd);
//
// A callback gets nullptr when the connection is dropped before its reply
// came (Close, an I/O error, the server closing). After a drop, connected()
// is false and error() says why; Connect() may be called again.
//
// Thread safety: none; one thread owns a RedisClient. hiredis 0.14 has no
// TLS: the connection is plaintext (docs/harvest-shared.md says what
// isolates it instead).
#ifndef RCPTGUARD_SERVER_HARVEST_SHARED_REDIS_CLIENT_H_
#define RCPTGUARD_SERVER_HARVEST_SHARED_REDIS_CLIENT_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

struct redisAsyncContext;
struct redisReply;

namespace rcptguard::harvest_shared {

class RedisClient {
 public:
  using Callback = std::function<void(const redisReply*)>;

  RedisClient() = default;
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Starts a non-blocking connection to "host:port" or "unix:/path".
  // Commands may be queued at once; they are sent when it is up.
  absl::Status Connect(std::string_view address);
  // Sends one command; false when not connected (the callback is not
  // called).
  bool Command(const std::vector<std::string>& argv, Callback callback);
  // Waits up to `timeout` for the socket (and for `wake_fd` to become
  // readable, if >= 0), then reads and writes what it can; callbacks run
  // here. Returns true if wake_fd was readable.
  bool Poll(absl::Duration timeout, int wake_fd);
  // Drops the connection; pending callbacks get nullptr.
  void Close();

  bool connected() const { return ac_ != nullptr; }
  // Why the last connection ended or failed ("" if none).
  const std::string& error() const { return error_; }
  // Commands sent whose replies have not come back.
  size_t pending() const { return pending_; }
  // When the last reply came (InfinitePast if none).
  absl::Time last_reply() const { return last_reply_; }

 private:
  static void OnReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void OnDisconnect(const redisAsyncContext* ac, int status);
  static void AddRead(void* self);
  static void DelRead(void* self);
  static void AddWrite(void* self);
  static void DelWrite(void* self);
  static void Cleanup(void* self);

  redisAsyncContext* ac_ = nullptr;
  bool want_read_ = false;
  bool want_write_ = false;
  bool in_callback_ = false;
  size_t pending_ = 0;
  absl::Time last_reply_ = absl::InfinitePast();
  std::string error_;
};

}  // namespace rcptguard::harvest_shared

#endif  // RCPTGUARD_SERVER_HARVEST_SHARED_REDIS_CLIENT_H_
