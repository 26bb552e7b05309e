// DirectoryHandle: the slot that holds the directory being served.
//
// Request threads call Get() once per batch and keep the returned
// shared_ptr until the batch is answered, so one batch sees one directory.
// The loader builds the next directory apart and publishes it with
// Replace(). The directory it replaces is not dropped there: the handle keeps
// it on a retired list, so the last reference never goes away on a request
// thread (destroying 10^8 fingerprints takes milliseconds: unmapping,
// freeing). Reclaim(), called by the loader or a background thread, frees
// the retired directories that no reader holds any more.
//
//   DirectoryHandle handle;
//   handle.Replace(std::move(next));                      // loader
//   std::shared_ptr<const Directory> dir = handle.Get();  // request thread
//   if (dir == nullptr) { /* nothing loaded yet */ }
//   handle.Reclaim();                                     // loader, later
//
// Thread safety: every method may be called from any thread. Readers share
// one mutex in shared (reader) mode, so they never wait for each other; the
// only exclusive section on it is Replace()'s pointer swap (a few
// instructions, no allocation, no destruction), so a reload never pauses
// lookups. The retired list has its own mutex that readers never take. The
// handle must outlive its readers' calls to Get() (the shared_ptrs they got
// may outlive the handle).
//
// Why not std::atomic<std::shared_ptr>: libstdc++ 12's load() releases its
// internal bit lock with memory_order_relaxed, so its read of the pointer is
// not ordered before a later exchange(); ThreadSanitizer reports it, and on
// weakly ordered CPUs (arm64) a reader could pair the new pointer with the
// old reference count. A shared-mode absl::Mutex costs about the same (one
// atomic read-modify-write each way next to the refcount increment) and is
// checked by -Wthread-safety.
#ifndef RCPTGUARD_SERVER_DIRECTORY_DIRECTORY_HANDLE_H_
#define RCPTGUARD_SERVER_DIRECTORY_DIRECTORY_HANDLE_H_

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/directory/directory.h"

namespace rcptguard::directory {

class DirectoryHandle {
 public:
  DirectoryHandle() = default;
  DirectoryHandle(const DirectoryHandle&) = delete;
  DirectoryHandle& operator=(const DirectoryHandle&) = delete;

  // The directory being served; null before the first Replace().
  std::shared_ptr<const Directory> Get() const;

  // Publishes `next` (null unpublishes). Readers that already called Get()
  // keep the directory they got; later Get() calls return `next`. The
  // previous directory moves to the retired list. Never blocks readers.
  void Replace(std::shared_ptr<const Directory> next);

  // Frees the retired directories that nobody else references any more
  // (use_count() == 1, i.e. only the retired list). Returns how many it
  // freed. The freeing happens on the calling thread, outside the lock.
  size_t Reclaim();

  // Retired directories still waiting for their readers.
  size_t retired_count() const;

 private:
  // Shared by readers; exclusive only for the swap in Replace().
  mutable absl::Mutex current_mu_;
  std::shared_ptr<const Directory> current_ ABSL_GUARDED_BY(current_mu_);

  // Loader side only (Replace, Reclaim, retired_count).
  mutable absl::Mutex retired_mu_;
  std::vector<std::shared_ptr<const Directory>> retired_
      ABSL_GUARDED_BY(retired_mu_);
};

}  // namespace rcptguard::directory

#endif  // RCPTGUARD_SERVER_DIRECTORY_DIRECTORY_HANDLE_H_
