// Owns the served directory: loads it from the configured sources, swaps it
// into the DirectoryHandle that the request path reads, frees retired ones
// off the request path, and reports status.
//
// Thread safety: all methods are safe to call concurrently. Loads are
// serialized by load_mu_; the request path never touches that mutex (it only
// reads the DirectoryHandle).
#ifndef RCPTGUARD_SERVER_SERVICE_DIRECTORY_MANAGER_H_
#define RCPTGUARD_SERVER_SERVICE_DIRECTORY_MANAGER_H_

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "rcptguard/v1/admin.pb.h"
#include "rcptguard/v1/config.pb.h"
#include "server/directory/directory_handle.h"
#include "server/directory/siphash.h"

namespace rcptguard::service {

class DirectoryManager {
 public:
  DirectoryManager(v1::ServerConfig config, directory::SipKey key);

  // Builds a directory from the configured sources and serves it. On error
  // the directory served so far (if any) stays served.
  absl::Status Load() ABSL_LOCKS_EXCLUDED(load_mu_);

  // What the request path reads.
  const directory::DirectoryHandle* handle() const { return &handle_; }
  bool serving() const { return handle_.Get() != nullptr; }

  void FillStatus(v1::GetStatusResponse* response) const
      ABSL_LOCKS_EXCLUDED(stats_mu_);

 private:
  // Constant after construction.
  const v1::ServerConfig config_;
  const directory::SipKey key_;
  const absl::Time started_at_;

  directory::DirectoryHandle handle_;

  // Serializes loads.
  absl::Mutex load_mu_;

  mutable absl::Mutex stats_mu_;
  v1::LoadStatistics last_stats_ ABSL_GUARDED_BY(stats_mu_);
};

}  // namespace rcptguard::service

#endif  // RCPTGUARD_SERVER_SERVICE_DIRECTORY_MANAGER_H_
