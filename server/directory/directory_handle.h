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
// Thread safety: every method may be called from any thread. Get() is
// lock-free: it never waits for anything, and in particular never for the
// loader. It announces itself on one of two reader counters, reads the
// current slot, copies the shared_ptr out of it (one atomic increment) and
// leaves. Replace() swaps the slot pointer atomically and then waits for a
// grace period (both reader counters seen at zero after flipping the epoch
// that selects them, as in userspace RCU) before it touches the old slot, so
// a reader never copies out of freed memory. Replace() and Reclaim()
// serialize on a mutex that readers never take. The handle must outlive its
// readers' calls to Get() (the shared_ptrs they got may outlive the handle).
#ifndef RCPTGUARD_SERVER_DIRECTORY_DIRECTORY_HANDLE_H_
#define RCPTGUARD_SERVER_DIRECTORY_DIRECTORY_HANDLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/directory/directory.h"

namespace rcptguard::directory {

class DirectoryHandle {
 public:
  DirectoryHandle() = default;
  ~DirectoryHandle();
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
  struct Slot {
    std::shared_ptr<const Directory> directory;
  };
  struct alignas(64) ReaderCount {
    std::atomic<int64_t> n{0};
  };

  // Waits until every Get() that could have read a slot published before
  // this call has finished. Loader side only.
  void WaitForReaders() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Read by Get() without locks. `current_` is owned by the handle.
  std::atomic<Slot*> current_{nullptr};
  std::atomic<uint32_t> epoch_{0};
  mutable ReaderCount readers_[2];

  // Loader side only (Replace, Reclaim, retired_count).
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<const Directory>> retired_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rcptguard::directory

#endif  // RCPTGUARD_SERVER_DIRECTORY_DIRECTORY_HANDLE_H_
