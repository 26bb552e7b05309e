// Owns the served directory: loads it from the configured source (LDIF
// files or a snapshot file), judges every candidate against guards before it
// replaces anything, swaps it into the DirectoryHandle that the request path
// reads, frees retired directories off the request path, watches the
// snapshot file, and reports status.
//
// Guards, in order (a refused candidate leaves the served directory as it
// is, is logged once, counted, and shown in status):
//   - "empty": a candidate with no address is always refused;
//   - "missing_domain": a served domain that has addresses now and none in
//     the candidate is refused unless forced;
//   - "shrunk": a candidate with fewer than (1 - max_shrink) times the
//     served addresses is refused unless forced.
// A reload is forced by Reload(force=true) or by the presence of
// directory.force_reload_file (removed after the forced load succeeds).
//
// Wiring: the clock and the callbacks (DirectoryManagerOptions) are fixed at
// construction, so the manager is complete before anything can call
// Reload (Admin.Reload, SIGHUP, the watcher); nothing is set afterwards.
//
// Thread safety: all methods are safe to call concurrently. Loads are
// serialized by load_mu_; the request path never touches it (it only reads
// the lock-free DirectoryHandle). The callbacks run on the loading thread,
// with load_mu_ held: they must not call Reload.
#ifndef RCPTGUARD_SERVER_SERVICE_DIRECTORY_MANAGER_H_
#define RCPTGUARD_SERVER_SERVICE_DIRECTORY_MANAGER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "rcptguard/v1/admin.pb.h"
#include "rcptguard/v1/config.pb.h"
#include "server/directory/directory_handle.h"
#include "server/directory/siphash.h"
#include "server/service/directory_loader.h"

namespace rcptguard::service {

// What one reload attempt came to.
struct ReloadResult {
  enum class Kind { kLoaded, kUnchanged, kRefused, kFailed };
  Kind kind = Kind::kFailed;
  // For kRefused / kFailed: a short, bounded code (metrics label) and the
  // message.
  std::string reason;
  absl::Status status;
  std::string version;  // the candidate's
  double seconds = 0;
};

// Receives every reload outcome (metrics) and the directory served after
// it (null when none); called on the loading thread.
using ReloadObserver =
    std::function<void(const ReloadResult&, const directory::Directory*)>;

// What a DirectoryManager reads the time from and calls out to.
struct DirectoryManagerOptions {
  // The time of started_at, reload durations and timestamps, the watcher's
  // schedule, and the directory's age (staleness). Must outlive the
  // manager.
  const Clock* clock = RealClock::Get();
  // Called after every successful load (e.g. to turn health SERVING).
  std::function<void()> on_loaded;
  // Receives every reload outcome.
  ReloadObserver observer;
};

class DirectoryManager {
 public:
  // stat() identity of a file: inode, mtime seconds and nanoseconds, size.
  using FileStamp = std::tuple<uint64_t, int64_t, int64_t, int64_t>;

  // `config` is read as ParseConfig fills it in (config.h).
  DirectoryManager(v1::ServerConfig config, directory::SipKey key,
                   DirectoryManagerOptions options = {});
  ~DirectoryManager();

  // Loads from the configured source and serves the result if it passes
  // the guards. `trigger` ("start", "watch", "sighup", "admin") is logged.
  // Errors: FailedPrecondition naming the guard for a refused candidate;
  // the loader's error for a failed one.
  absl::StatusOr<ReloadResult> Reload(bool force, std::string_view trigger)
      ABSL_LOCKS_EXCLUDED(load_mu_, stats_mu_);

  // Starts the maintenance thread: frees retired directories and, with a
  // snapshot source, reloads when the file changes. Idempotent.
  void StartMaintenance();
  void StopMaintenance();

  // What the request path reads.
  const directory::DirectoryHandle* handle() const { return &handle_; }

  void FillStatus(v1::GetStatusResponse* response) const
      ABSL_LOCKS_EXCLUDED(stats_mu_);

 private:
  // Judges `candidate` against the served directory; returns the refusal
  // reason code and message, or an empty code when it may be served.
  std::pair<std::string, std::string> CheckGuards(
      const LoadedDirectory& candidate, bool force) const;
  void RecordOutcome(const ReloadResult& result, std::string_view trigger)
      ABSL_LOCKS_EXCLUDED(stats_mu_);
  void MaintenanceLoop();

  // Constant after construction.
  const v1::ServerConfig config_;
  const directory::SipKey key_;
  const Clock* const clock_;
  const std::function<void()> on_loaded_;  // may be empty
  const ReloadObserver observer_;          // may be empty
  const absl::Time started_at_;
  const absl::Duration watch_interval_;
  const absl::Duration stale_after_;

  directory::DirectoryHandle handle_;

  // Serializes loads.
  absl::Mutex load_mu_;

  mutable absl::Mutex stats_mu_;
  v1::LoadStatistics last_stats_ ABSL_GUARDED_BY(stats_mu_);
  v1::ReloadStatus last_reload_ ABSL_GUARDED_BY(stats_mu_);

  // stat() identity (inode, mtime, size) of the snapshot file as the last
  // load attempt found it before reading it: the watcher reloads when the
  // file differs from it, so a file replaced between a load and the
  // watcher's start is not missed.
  mutable absl::Mutex stamp_mu_;
  std::optional<FileStamp> attempted_stamp_ ABSL_GUARDED_BY(stamp_mu_);

  absl::Mutex maintenance_mu_;
  bool stop_ ABSL_GUARDED_BY(maintenance_mu_) = false;
  std::thread maintenance_;  // owned by Start/StopMaintenance callers
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_DIRECTORY_MANAGER_H_
