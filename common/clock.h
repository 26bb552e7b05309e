// The one source of the current time, injected wherever time is read
// (harvest windows, penalty boxes, tarpit escalation, recipient budgets,
// directory staleness and reload timing), so that each can be tested with a
// FakeClock.
//
//   RealClock clock;                 // production: absl::Now()
//   FakeClock fake;                  // tests: starts at a fixed instant
//   fake.Advance(absl::Minutes(5));  // and moves only when told to
//
// Contract: Now() never blocks for long and may be called from any thread.
// A clock may jump backwards (FakeClock::Set, or a wall-clock step); callers
// must tolerate that (the harvest detector treats time that goes backwards
// as "still now").
//
// Thread safety: every class here is safe to share between threads.
// FakeClock serializes Advance/Set/Now with its own mutex.
#ifndef RCPTGUARD_COMMON_CLOCK_H_
#define RCPTGUARD_COMMON_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rcptguard {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// The system's wall clock.
class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }

  // A process-wide instance that is never destroyed.
  static const RealClock* Get() {
    static const RealClock* const kClock = new RealClock();
    return kClock;
  }
};

// A clock that moves only when told to. Starts at 2023-11-14T22:13:20Z
// (Unix 1,700,000,000) unless given another instant.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_(start) {}

  absl::Time Now() const override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rcptguard

#endif  // RCPTGUARD_COMMON_CLOCK_H_
