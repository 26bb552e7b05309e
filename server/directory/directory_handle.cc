#include "server/directory/directory_handle.h"

#include <thread>
#include <utility>

namespace rcptguard::directory {

DirectoryHandle::~DirectoryHandle() {
  delete current_.load(std::memory_order_acquire);
}

std::shared_ptr<const Directory> DirectoryHandle::Get() const {
  // seq_cst throughout: the increment must be ordered before the slot load,
  // and the loader's slot exchange before its epoch flip and counter reads.
  ReaderCount& count = readers_[epoch_.load() & 1];
  count.n.fetch_add(1);
  std::shared_ptr<const Directory> result;
  if (const Slot* slot = current_.load(); slot != nullptr) {
    result = slot->directory;
  }
  count.n.fetch_sub(1, std::memory_order_release);
  return result;
}

void DirectoryHandle::WaitForReaders() {
  // A reader that saw the old slot incremented one of the two counters
  // before the exchange. Flip the epoch so new readers use the other
  // counter, wait for the old one to drain, and do it again for the second.
  // Readers hold a counter for a few nanoseconds, so this is short.
  for (int round = 0; round < 2; ++round) {
    const uint32_t old = epoch_.fetch_add(1) & 1;
    while (readers_[old].n.load(std::memory_order_acquire) != 0) {
      std::this_thread::yield();
    }
  }
}

void DirectoryHandle::Replace(std::shared_ptr<const Directory> next) {
  Slot* fresh = next == nullptr ? nullptr : new Slot{std::move(next)};
  absl::MutexLock lock(&mu_);
  Slot* old = current_.exchange(fresh);
  if (old == nullptr) return;
  WaitForReaders();
  // No reader can be inside `old` now. Its directory may still be in use by
  // readers' shared_ptrs: keep it off the request path until Reclaim().
  retired_.push_back(std::move(old->directory));
  delete old;
}

size_t DirectoryHandle::Reclaim() {
  // Unreferenced directories are moved out under the lock and destroyed
  // after it is released. Once a retired directory's use_count() is 1 nobody
  // can obtain a new reference (it is no longer current and only the list
  // holds it), so the count cannot grow again; the final release in
  // ~shared_ptr synchronizes with the readers' releases.
  std::vector<std::shared_ptr<const Directory>> unused;
  {
    absl::MutexLock lock(&mu_);
    auto keep = retired_.begin();
    for (auto it = retired_.begin(); it != retired_.end(); ++it) {
      if (*it == nullptr || it->use_count() == 1) {
        unused.push_back(std::move(*it));
      } else {
        if (keep != it) *keep = std::move(*it);
        ++keep;
      }
    }
    retired_.erase(keep, retired_.end());
  }
  return unused.size();  // `unused` is destroyed here, outside the lock.
}

size_t DirectoryHandle::retired_count() const {
  absl::MutexLock lock(&mu_);
  return retired_.size();
}

}  // namespace rcptguard::directory
