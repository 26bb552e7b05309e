// Shares one Detector's state with other rcptguardd replicas through Redis
// (docs/harvest-shared.md), on a thread of its own, never on the request
// path: Validate decides from the detector's local state as ever.
//
// Every flush interval the thread takes the detector's deltas
// (Detector::TakeDeltas), applies them to Redis in one pipeline (a Lua
// script per key that answers the key's global state), polls the keys other
// replicas changed and the ForgetClient requests they made, fetches those
// keys, and folds every global state into the detector
// (Detector::MergeShared). A penalty box that opens or grows wakes the
// thread at once (write-through).
//
// Redis trouble never blocks anything but this thread: deltas wait in a
// bounded queue (the oldest dropped and counted past the bound), the
// connection is retried with backoff, and the detector keeps counting
// locally. A pipeline whose replies stop for command_timeout drops the
// connection (a frozen or very slow Redis); its deltas in flight are counted
// as dropped (whether Redis applied them is unknown, and counting them twice
// could block a legitimate sender).
//
//   Replicator::Options options;
//   options.address = "unix:/run/redis/redis.sock";
//   auto r = Replicator::Create(options, detector, RealClock::Get());
//   (*r)->Start();
//   ... (*r)->Forget("192.0.2.7");  // here and on every replica
//
// Thread safety: Forget(), status() and Wake() may be called from any
// thread; Start() and the destructor by the owner.
#ifndef RCPTGUARD_SERVER_HARVEST_SHARED_REPLICATOR_H_
#define RCPTGUARD_SERVER_HARVEST_SHARED_REPLICATOR_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/harvest/harvest.h"
#include "server/harvest/shared_state.h"
#include "server/harvest_shared/codec.h"
#include "server/harvest_shared/redis_client.h"

namespace rcptguard::harvest_shared {

// Upper bounds (seconds) of the flush latency histogram.
inline constexpr std::array<double, 10> kFlushBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};

struct ReplicatorStatus {
  bool connected = false;
  // "starting", "connected", "disconnected", "writes failing".
  std::string state;
  std::string address;
  std::string last_error;                       // "" if none since connected
  absl::Time last_sync = absl::InfinitePast();  // last complete cycle
  // Seconds since the last complete cycle (since start if none).
  double lag_seconds = 0;
  uint64_t flushes = 0;          // complete cycles
  uint64_t errors = 0;           // error replies, timeouts, lost connections
  uint64_t dropped_deltas = 0;   // key deltas dropped (queue bound, lost)
  uint64_t keys_sent = 0;        // key deltas applied
  uint64_t keys_fetched = 0;     // states fetched for others' changes
  uint64_t keys_merged = 0;      // states folded into the detector
  uint64_t forgets_applied = 0;  // other replicas' ForgetClient requests
  uint64_t reconnects = 0;
  size_t queued_deltas = 0;
  // Flush latency histogram (kFlushBuckets, cumulative counts), sum, count.
  std::array<uint64_t, kFlushBuckets.size()> flush_buckets{};
  double flush_seconds_sum = 0;
  uint64_t flush_count = 0;
};

class Replicator {
 public:
  struct Options {
    std::string address;   // "host:port" or "unix:/path"
    std::string username;  // ACL user; empty: AUTH with the password only
    std::string password;  // empty: no AUTH
    std::string key_prefix = "rcptguard:";
    int database = 0;
    absl::Duration connect_timeout = absl::Seconds(1);
    absl::Duration command_timeout = absl::Seconds(1);
    absl::Duration flush_interval = absl::Milliseconds(250);
    // Key deltas waiting while Redis is away; past it the oldest go.
    size_t max_queued_deltas = 200'000;
    // Key deltas and fetched keys per cycle (the rest wait a cycle, and
    // while connected wait in the detector, merging with later ones).
    size_t max_keys_per_flush = 20'000;
    absl::Duration min_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
  };

  // Checks options; does not connect. `detector` must outlive the
  // Replicator. Calls detector->RecordDeltas: create it before the
  // detector serves.
  static absl::StatusOr<std::unique_ptr<Replicator>> Create(
      Options options, harvest::Detector* detector);
  ~Replicator();  // stops the thread

  // Starts the thread (connects, loads the boxes and windows of every key
  // other replicas marked active, then flushes every interval).
  void Start();

  // Forgets here at once, and asks every replica (through Redis) to forget
  // too; removes the keys' shared state.
  absl::StatusOr<size_t> Forget(std::string_view ip_or_cidr);

  ReplicatorStatus status() const;

  // Asks for a flush now (a box changed). Cheap; any thread.
  void Wake();

 private:
  struct Queued {
    harvest::SharedKey delta;
    int tries = 0;
  };
  struct Cycle;
  enum class State { kDisconnected, kConnecting, kConnected };

  Replicator(Options options, harvest::Detector* detector);
  void Run();
  void Drain() ABSL_LOCKS_EXCLUDED(mu_);
  absl::Time CycleDeadline() const;
  void StartConnect();
  void StartCycle();
  void SendFetches(const std::shared_ptr<Cycle>& cycle);
  void FinishCycle(const std::shared_ptr<Cycle>& cycle);
  void Fail(const std::string& reason);
  void SetState(const std::string& state, const std::string& detail)
      ABSL_LOCKS_EXCLUDED(mu_);
  void NoteError(const std::string& what) ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const Options options_;
  harvest::Detector* const detector_;
  const KeyNames names_;
  const std::string replica_id_;
  const int64_t hash_ttl_ms_;    // the ring span plus a bucket
  const int64_t active_ttl_ms_;  // how long active/forget entries matter
  int wake_fd_ = -1;
  std::atomic<bool> wake_pending_{false};
  std::atomic<bool> stop_{false};
  std::thread thread_;

  // Owned by the thread (Run and what it calls).
  RedisClient redis_;
  State state_ = State::kDisconnected;
  absl::Time deadline_ = absl::InfinitePast();  // connect or cycle deadline
  absl::Time next_attempt_ = absl::InfinitePast();
  absl::Duration backoff_ = absl::ZeroDuration();
  absl::Time next_flush_ = absl::InfinitePast();
  absl::Time next_drain_ = absl::InfinitePast();
  std::shared_ptr<Cycle> cycle_;  // in flight, or null
  std::string sha_;
  int64_t active_cursor_ms_ = 0;
  int64_t forget_cursor_ms_ = 0;
  absl::flat_hash_map<std::string, int64_t> seen_forgets_;
  bool writes_failing_ = false;
  bool logged_down_ = false;   // the current outage was logged
  std::string deferred_fail_;  // set in callbacks, acted on after Poll
  int handshake_left_ = 0;
  absl::Time last_cycle_start_ = absl::InfinitePast();
  uint64_t forget_seq_ = 0;
  uint64_t attempts_ = 0;
  // Members of the active set at or above the cursor, with the score this
  // replica last saw or wrote: not fetched again until it changes.
  absl::flat_hash_map<std::string, int64_t> known_scores_;

  mutable absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  // Forget requests to publish: (text, keys).
  std::vector<std::pair<std::string, std::vector<harvest::PrefixKey>>> forgets_
      ABSL_GUARDED_BY(mu_);
  // Keys forgotten here whose forget has not reached Redis yet: global
  // states of them fetched meanwhile are stale and not merged.
  absl::flat_hash_map<harvest::PrefixKey, int> unpublished_forgets_
      ABSL_GUARDED_BY(mu_);
  ReplicatorStatus status_ ABSL_GUARDED_BY(mu_);
  absl::Time started_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace rcptguard::harvest_shared

#endif  // RCPTGUARD_SERVER_HARVEST_SHARED_REPLICATOR_H_
