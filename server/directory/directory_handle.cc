#include "server/directory/directory_handle.h"

#include <utility>

namespace rcptguard::directory {

std::shared_ptr<const Directory> DirectoryHandle::Get() const {
  absl::ReaderMutexLock lock(&current_mu_);
  return current_;
}

void DirectoryHandle::Replace(std::shared_ptr<const Directory> next) {
  {
    absl::MutexLock lock(&current_mu_);
    current_.swap(next);
  }
  // `next` now holds the previous directory; keep it off the request path.
  if (next == nullptr) return;
  absl::MutexLock lock(&retired_mu_);
  retired_.push_back(std::move(next));
}

size_t DirectoryHandle::Reclaim() {
  // Unreferenced directories are moved out under the lock and destroyed
  // after it is released. Once a retired directory's use_count() is 1 nobody
  // can obtain a new reference (it is no longer current_ and only the list
  // holds it), so the count cannot grow again; the final release in
  // ~shared_ptr synchronizes with the readers' releases.
  std::vector<std::shared_ptr<const Directory>> unused;
  {
    absl::MutexLock lock(&retired_mu_);
    auto keep = retired_.begin();
    for (auto it = retired_.begin(); it != retired_.end(); ++it) {
      if (it->use_count() == 1) {
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
  absl::MutexLock lock(&retired_mu_);
  return retired_.size();
}

}  // namespace rcptguard::directory
