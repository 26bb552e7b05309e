#include "server/harvest_shared/replicator.h"

#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/text.h"
#include "hiredis/hiredis.h"

namespace rcptguard::harvest_shared {

using harvest::PrefixKey;
using harvest::SharedKey;

namespace {

// Publishes one ForgetClient request: removes the keys' hashes and active
// entries, leaves a tombstone per key for a minute (deltas of what was seen
// before the forget are then refused), and logs the request (scored by
// Redis time) for other replicas.
// KEYS: forget set, active set, then hash, tombstone per key;
// ARGV: member, keep ms, key texts...
constexpr std::string_view kForgetScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 3, #KEYS, 2 do
  redis.call('DEL', KEYS[i])
  redis.call('SET', KEYS[i + 1], string.format('%d', now), 'PX', 60000)
end
for i = 3, #ARGV do redis.call('ZREM', KEYS[2], ARGV[i]) end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return now
)lua";

// How long ForgetClient requests stay in the log.
constexpr int64_t kForgetKeepMs = 10 * 60 * 1000;

std::string_view Str(const redisReply* r) {
  if (r == nullptr || r->str == nullptr) return {};
  return std::string_view(r->str, r->len);
}

bool IsError(const redisReply* r) {
  return r != nullptr && r->type == REDIS_REPLY_ERROR;
}

std::string ReplicaId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device rd;
  return absl::StrCat(host, "/", getpid(), "/", rd() & 0xffffff);
}

int64_t ParseScore(std::string_view text) {
  double d = 0;
  if (!absl::SimpleAtod(ToAbsl(text), &d)) return 0;
  return static_cast<int64_t>(d);
}

}  // namespace

// One flush: the pipeline of phase 1 (deltas, forgets, polls), then the
// fetches of keys others changed, then the merge.
struct Replicator::Cycle {
  absl::Time start;
  bool aborted = false;
  int outstanding = 0;
  int errors = 0;
  std::string first_error;
  size_t applied = 0;
  size_t requeued = 0;  // error replies: back in the queue, or dropped
  std::vector<Queued> sent;
  std::vector<SharedKey> states;
  std::vector<std::string> fetch;  // key texts
  // Keys whose global state this cycle's own writes brought back: not
  // fetched again.
  absl::flat_hash_set<std::string> written;
  absl::flat_hash_set<PrefixKey> forgotten;  // not merged in this cycle
  std::vector<PrefixKey> published;          // forgets of this replica it sends
  // ... as taken from forgets_, put back if the cycle fails.
  std::vector<std::pair<std::string, std::vector<PrefixKey>>> forgets;
};

absl::StatusOr<std::unique_ptr<Replicator>> Replicator::Create(
    Options options, harvest::Detector* detector) {
  if (detector == nullptr) {
    return absl::InvalidArgumentError("detector: must not be null");
  }
  if (options.address.empty()) {
    return absl::InvalidArgumentError("address: must not be empty");
  }
  if (options.flush_interval <= absl::ZeroDuration() ||
      options.connect_timeout <= absl::ZeroDuration() ||
      options.command_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("intervals and timeouts: must be > 0");
  }
  if (options.max_queued_deltas == 0 || options.max_keys_per_flush == 0) {
    return absl::InvalidArgumentError("bounds: must be > 0");
  }
  std::unique_ptr<Replicator> r(new Replicator(std::move(options), detector));
  if (r->wake_fd_ < 0) return absl::InternalError("eventfd failed");
  return r;
}

Replicator::Replicator(Options options, harvest::Detector* detector)
    : options_(std::move(options)),
      detector_(detector),
      names_(MakeKeyNames(options_.key_prefix, detector->bucket_width())),
      replica_id_(ReplicaId()),
      hash_ttl_ms_(absl::ToInt64Milliseconds(detector->bucket_width() * 61) +
                   1),
      active_ttl_ms_(hash_ttl_ms_) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  {
    absl::MutexLock lock(&mu_);
    status_.address = options_.address;
    status_.state = "starting";
  }
  detector_->RecordDeltas([this] { Wake(); });
}

Replicator::~Replicator() {
  stop_.store(true);
  Wake();
  if (thread_.joinable()) thread_.join();
  redis_.Close();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void Replicator::Start() {
  {
    absl::MutexLock lock(&mu_);
    started_ = absl::Now();
  }
  thread_ = std::thread([this] { Run(); });
}

void Replicator::Wake() {
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

absl::StatusOr<size_t> Replicator::Forget(std::string_view ip_or_cidr) {
  absl::StatusOr<harvest::Detector::Forgotten> f =
      detector_->ForgetKeys(ip_or_cidr);
  if (!f.ok()) return f.status();
  if (!f->keys.empty()) {
    absl::MutexLock lock(&mu_);
    const absl::flat_hash_set<PrefixKey> doomed(f->keys.begin(), f->keys.end());
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                [&](const Queued& q) {
                                  return doomed.contains(q.delta.key);
                                }),
                 queue_.end());
    for (const PrefixKey& k : f->keys) ++unpublished_forgets_[k];
    forgets_.emplace_back(std::string(ip_or_cidr), std::move(f->keys));
  }
  Wake();
  return f->removed;
}

ReplicatorStatus Replicator::status() const {
  absl::MutexLock lock(&mu_);
  ReplicatorStatus s = status_;
  s.queued_deltas = queue_.size();
  const absl::Time since =
      s.last_sync != absl::InfinitePast() ? s.last_sync : started_;
  s.lag_seconds = since == absl::InfinitePast()
                      ? 0
                      : absl::ToDoubleSeconds(absl::Now() - since);
  return s;
}

void Replicator::SetState(const std::string& state, const std::string& detail) {
  {
    absl::MutexLock lock(&mu_);
    if (status_.state == state) return;
    status_.state = state;
    status_.connected = state == "connected" || state == "writes failing";
    if (!detail.empty()) status_.last_error = detail;
    if (state == "connected") status_.last_error.clear();
  }
  const std::string reason = detail.empty() ? "-" : SafeText(detail, 200);
  if (state == "connected") {
    LogInfo("harvest_shared_state",
            {{"state", state}, {"address", options_.address}});
  } else {
    LogWarning(
        "harvest_shared_state",
        {{"state", state}, {"address", options_.address}, {"reason", reason}});
  }
}

void Replicator::NoteError(const std::string& what) {
  absl::MutexLock lock(&mu_);
  ++status_.errors;
  status_.last_error = what;
}

absl::Time Replicator::CycleDeadline() const {
  // A pipeline may be long; what times out is Redis answering nothing.
  return std::max(deadline_, redis_.last_reply() + options_.command_timeout);
}

void Replicator::Drain() {
  // While connected, take no more than the next flush sends: the rest stay
  // in the detector, where later deltas of the same key merge with them.
  // While not, queue up to the bound, dropping the oldest.
  size_t room = options_.max_queued_deltas;
  if (state_ == State::kConnected) {
    absl::MutexLock lock(&mu_);
    room = queue_.size() >= options_.max_keys_per_flush
               ? 0
               : options_.max_keys_per_flush - queue_.size();
  }
  if (room == 0) return;
  std::vector<SharedKey> deltas = detector_->TakeDeltas(room);
  if (deltas.empty()) return;
  absl::MutexLock lock(&mu_);
  for (SharedKey& d : deltas) queue_.push_back(Queued{std::move(d), 0});
  while (queue_.size() > options_.max_queued_deltas) {
    queue_.pop_front();
    ++status_.dropped_deltas;
  }
}

void Replicator::Run() {
  // hiredis writes with write(2): a Redis that went away would raise
  // SIGPIPE, whose default action ends the process. Blocked on this thread
  // (a write's SIGPIPE goes to the writing thread), write fails with EPIPE
  // instead and the connection is dropped as any other failure.
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  const absl::Duration interval = options_.flush_interval;
  bool woken = false;      // a box changed: flush early
  bool drain_now = false;  // ... and take its delta now
  while (!stop_.load()) {
    absl::Time now = absl::Now();
    if (now >= next_drain_ || drain_now) {
      Drain();
      next_drain_ = now + interval;
      drain_now = false;
    }
    switch (state_) {
      case State::kDisconnected:
        woken = false;  // queued; sent when connected
        if (now >= next_attempt_) StartConnect();
        break;
      case State::kConnecting:
        woken = false;
        if (now >= deadline_) Fail("connect timeout");
        break;
      case State::kConnected:
        if (cycle_ != nullptr) {
          if (now >= CycleDeadline()) Fail("command timeout");
        } else if (now >= next_flush_ ||
                   (woken && now >= last_cycle_start_ + interval / 5)) {
          StartCycle();
          woken = false;
        }
        break;
    }
    absl::Time until = next_drain_;
    if (state_ == State::kDisconnected) until = std::min(until, next_attempt_);
    if (state_ == State::kConnecting) {
      until = std::min(until, deadline_);
    } else if (cycle_ != nullptr) {
      until = std::min(until, CycleDeadline());
    } else if (state_ == State::kConnected) {
      until = std::min(until, next_flush_);
      if (woken) until = std::min(until, last_cycle_start_ + interval / 5);
    }
    const absl::Duration wait =
        std::clamp(until - absl::Now(), absl::Milliseconds(1), interval);
    if (redis_.Poll(wait, wake_fd_)) {
      uint64_t n;
      [[maybe_unused]] ssize_t got = read(wake_fd_, &n, sizeof(n));
      wake_pending_.store(false, std::memory_order_release);
      woken = true;
      drain_now = true;
    }
    if (!deferred_fail_.empty()) {
      std::string reason = std::move(deferred_fail_);
      deferred_fail_.clear();
      Fail(reason);
    } else if (state_ != State::kDisconnected && !redis_.connected()) {
      Fail(redis_.error().empty() ? "connection lost" : redis_.error());
    }
  }
}

void Replicator::StartConnect() {
  if (attempts_++ > 0) {
    absl::MutexLock lock(&mu_);
    ++status_.reconnects;
  }
  if (absl::Status s = redis_.Connect(options_.address); !s.ok()) {
    Fail(std::string(ToStd(s.message())));
    return;
  }
  state_ = State::kConnecting;
  deadline_ = absl::Now() + options_.connect_timeout;
  handshake_left_ = 0;
  auto check = [this](std::string what) {
    return [this, what](const redisReply* r) {
      if (r == nullptr) return;  // the loop notices the lost connection
      if (IsError(r)) {
        if (deferred_fail_.empty()) {
          deferred_fail_ = absl::StrCat(what, ": ", ToAbsl(Str(r)));
        }
        return;
      }
      if (what == "SCRIPT LOAD") sha_ = std::string(Str(r));
      if (--handshake_left_ == 0 && deferred_fail_.empty()) {
        state_ = State::kConnected;
        backoff_ = absl::ZeroDuration();
        next_flush_ = absl::Now();
        logged_down_ = false;
        writes_failing_ = false;
        SetState("connected", "");
      }
    };
  };
  std::vector<std::pair<std::vector<std::string>, std::string>> commands;
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      commands.push_back({{"AUTH", options_.password}, "AUTH"});
    } else {
      commands.push_back(
          {{"AUTH", options_.username, options_.password}, "AUTH"});
    }
  }
  if (options_.database != 0) {
    commands.push_back({{"SELECT", absl::StrCat(options_.database)}, "SELECT"});
  }
  commands.push_back(
      {{"SCRIPT", "LOAD", std::string(ApplyScript())}, "SCRIPT LOAD"});
  handshake_left_ = static_cast<int>(commands.size());
  for (auto& [argv, what] : commands) {
    if (!redis_.Command(argv, check(what))) {
      Fail("cannot queue handshake");
      return;
    }
  }
}

void Replicator::Fail(const std::string& reason) {
  if (cycle_ != nullptr) {
    cycle_->aborted = true;
    absl::MutexLock lock(&mu_);
    status_.dropped_deltas +=
        cycle_->sent.size() - cycle_->applied - cycle_->requeued;
    // Publishing a forget twice is harmless; never publishing it is not.
    for (auto& f : cycle_->forgets) forgets_.push_back(std::move(f));
  }
  cycle_ = nullptr;
  redis_.Close();
  const bool was_up = state_ != State::kDisconnected;
  state_ = State::kDisconnected;
  NoteError(reason);
  if (was_up || !logged_down_) {
    SetState("disconnected", reason);
    logged_down_ = true;
  }
  backoff_ = backoff_ == absl::ZeroDuration()
                 ? options_.min_backoff
                 : std::min(backoff_ * 2, options_.max_backoff);
  // Up to a quarter of jitter, so replicas do not reconnect in step.
  static thread_local std::mt19937 rng{std::random_device{}()};
  const double jitter = std::uniform_real_distribution<double>(0, 0.25)(rng);
  next_attempt_ = absl::Now() + backoff_ * (1 + jitter);
}

void Replicator::StartCycle() {
  Drain();
  auto cycle = std::make_shared<Cycle>();
  cycle->start = absl::Now();
  last_cycle_start_ = cycle->start;
  deadline_ = cycle->start + options_.command_timeout;
  std::vector<std::pair<std::string, std::vector<PrefixKey>>> forgets;
  {
    absl::MutexLock lock(&mu_);
    const size_t n = std::min(queue_.size(), options_.max_keys_per_flush);
    cycle->sent.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      cycle->sent.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    forgets.swap(forgets_);
  }
  cycle->forgets = forgets;
  cycle_ = cycle;
  const std::string bucket_ns =
      absl::StrCat(absl::ToInt64Nanoseconds(detector_->bucket_width()));
  const std::string hash_ttl = absl::StrCat(hash_ttl_ms_);
  const std::string active_ttl = absl::StrCat(active_ttl_ms_);

  auto done = [this, cycle] {
    if (--cycle->outstanding > 0 || cycle->aborted) return;
    SendFetches(cycle);
  };

  for (size_t i = 0; i < cycle->sent.size(); ++i) {
    const SharedKey& d = cycle->sent[i].delta;
    const std::string text = harvest::FormatPrefixKey(d.key);
    std::vector<std::string> argv = {"EVALSHA",
                                     sha_,
                                     "4",
                                     names_.Hash(d.key),
                                     names_.active,
                                     names_.clock,
                                     names_.Tombstone(d.key),
                                     bucket_ns,
                                     hash_ttl,
                                     active_ttl,
                                     text};
    for (auto& [f, v] : DeltaFields(d)) {
      argv.push_back(std::move(f));
      argv.push_back(std::move(v));
    }
    ++cycle->outstanding;
    redis_.Command(argv, [this, cycle, i, text, done](const redisReply* r) {
      if (cycle->aborted) return;
      if (r == nullptr) {
        cycle->aborted = true;
        return;
      }
      if (IsError(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        ++cycle->errors;
        const std::string what =
            IsError(r) ? std::string(Str(r)) : "unexpected script reply";
        NoteError(what);
        if (cycle->first_error.empty()) cycle->first_error = what;
        if (absl::StartsWith(ToAbsl(Str(r)), "NOSCRIPT")) {
          deferred_fail_ = what;  // reconnecting loads the script again
        }
        Queued q = std::move(cycle->sent[i]);
        ++cycle->requeued;
        absl::MutexLock lock(&mu_);
        if (++q.tries < 3) {
          queue_.push_front(std::move(q));
        } else {
          ++status_.dropped_deltas;
        }
      } else {
        known_scores_[text] = ParseScore(Str(r->element[0]));
        cycle->written.insert(text);
        std::vector<std::pair<std::string_view, std::string_view>> fields;
        for (size_t j = 1; j + 1 < r->elements; j += 2) {
          fields.emplace_back(Str(r->element[j]), Str(r->element[j + 1]));
        }
        cycle->states.push_back(
            ParseState(cycle->sent[i].delta.key, fields, nullptr));
        ++cycle->applied;
      }
      done();
    });
  }

  for (auto& [text, keys] : forgets) {
    std::vector<std::string> argv = {"EVAL", std::string(kForgetScript),
                                     absl::StrCat(2 * keys.size() + 2),
                                     names_.forget, names_.active};
    for (const PrefixKey& k : keys) {
      argv.push_back(names_.Hash(k));
      argv.push_back(names_.Tombstone(k));
    }
    argv.push_back(absl::StrCat(replica_id_, " ", ++forget_seq_, " ", text));
    argv.push_back(absl::StrCat(kForgetKeepMs));
    for (const PrefixKey& k : keys) {
      argv.push_back(harvest::FormatPrefixKey(k));
      cycle->forgotten.insert(k);
      cycle->published.push_back(k);
    }
    ++cycle->outstanding;
    redis_.Command(argv, [this, cycle, done](const redisReply* r) {
      if (cycle->aborted) return;
      if (r == nullptr) {
        cycle->aborted = true;
        return;
      }
      if (IsError(r)) {
        ++cycle->errors;
        NoteError(std::string(Str(r)));
      }
      done();
    });
  }

  // Forget requests of other replicas, then the keys they changed.
  ++cycle->outstanding;
  redis_.Command(
      {"ZRANGEBYSCORE", names_.forget, absl::StrCat(forget_cursor_ms_), "+inf",
       "WITHSCORES", "LIMIT", "0", "1000"},
      [this, cycle, done](const redisReply* r) {
        if (cycle->aborted) return;
        if (r == nullptr) {
          cycle->aborted = true;
          return;
        }
        if (r->type == REDIS_REPLY_ARRAY) {
          for (size_t j = 0; j + 1 < r->elements; j += 2) {
            const std::string member(Str(r->element[j]));
            const int64_t score = ParseScore(Str(r->element[j + 1]));
            forget_cursor_ms_ = std::max(forget_cursor_ms_, score);
            if (!seen_forgets_.emplace(member, score).second) continue;
            // "<replica> <seq> <ip_or_cidr>"
            const size_t a = member.find(' ');
            const size_t b =
                a == std::string::npos ? a : member.find(' ', a + 1);
            if (b == std::string::npos) continue;
            if (std::string_view(member).substr(0, a) == replica_id_) continue;
            absl::StatusOr<harvest::Detector::Forgotten> f =
                detector_->ForgetKeys(std::string_view(member).substr(b + 1));
            if (!f.ok()) continue;
            for (const PrefixKey& k : f->keys) cycle->forgotten.insert(k);
            absl::MutexLock lock(&mu_);
            ++status_.forgets_applied;
          }
          const int64_t horizon = forget_cursor_ms_ - kForgetKeepMs;
          absl::erase_if(seen_forgets_, [horizon](const auto& e) {
            return e.second < horizon;
          });
        } else if (IsError(r)) {
          ++cycle->errors;
          NoteError(std::string(Str(r)));
        }
        done();
      });
  ++cycle->outstanding;
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  redis_.Command({"ZREMRANGEBYSCORE", names_.active, "-inf",
                  absl::StrCat((now_ms - active_ttl_ms_) * 1000)},
                 [cycle, done](const redisReply* r) {
                   if (cycle->aborted) return;
                   if (r == nullptr) {
                     cycle->aborted = true;
                     return;
                   }
                   done();
                 });
  ++cycle->outstanding;
  redis_.Command(
      {"ZRANGEBYSCORE", names_.active, absl::StrCat(active_cursor_ms_), "+inf",
       "WITHSCORES", "LIMIT", "0", absl::StrCat(options_.max_keys_per_flush)},
      [this, cycle, done](const redisReply* r) {
        if (cycle->aborted) return;
        if (r == nullptr) {
          cycle->aborted = true;
          return;
        }
        if (r->type == REDIS_REPLY_ARRAY) {
          for (size_t j = 0; j + 1 < r->elements; j += 2) {
            std::string member(Str(r->element[j]));
            const int64_t score = ParseScore(Str(r->element[j + 1]));
            active_cursor_ms_ = std::max(active_cursor_ms_, score);
            auto [it, inserted] = known_scores_.emplace(member, score);
            if (!inserted && it->second == score) continue;  // seen
            it->second = score;
            if (cycle->written.contains(member)) continue;  // have it
            cycle->fetch.push_back(std::move(member));
          }
          const int64_t cursor = active_cursor_ms_;
          absl::erase_if(known_scores_,
                         [cursor](const auto& e) { return e.second < cursor; });
        } else if (IsError(r)) {
          ++cycle->errors;
          NoteError(std::string(Str(r)));
        }
        done();
      });
}

void Replicator::SendFetches(const std::shared_ptr<Cycle>& cycle) {
  if (cycle->fetch.empty()) {
    FinishCycle(cycle);
    return;
  }
  cycle->outstanding = static_cast<int>(cycle->fetch.size());
  for (const std::string& text : cycle->fetch) {
    absl::StatusOr<PrefixKey> key = ParseKeyText(text);
    if (!key.ok()) {
      if (--cycle->outstanding == 0) FinishCycle(cycle);
      continue;
    }
    const PrefixKey k = *key;
    redis_.Command(
        {"HGETALL", names_.Hash(k)}, [this, cycle, k](const redisReply* r) {
          if (cycle->aborted) return;
          if (r == nullptr) {
            cycle->aborted = true;
            return;
          }
          if (r->type == REDIS_REPLY_ARRAY) {
            std::vector<std::pair<std::string_view, std::string_view>> fields;
            for (size_t j = 0; j + 1 < r->elements; j += 2) {
              fields.emplace_back(Str(r->element[j]), Str(r->element[j + 1]));
            }
            cycle->states.push_back(ParseState(k, fields, nullptr));
            absl::MutexLock lock(&mu_);
            ++status_.keys_fetched;
          } else if (IsError(r)) {
            ++cycle->errors;
            NoteError(std::string(Str(r)));
          }
          if (--cycle->outstanding == 0) FinishCycle(cycle);
        });
  }
}

void Replicator::FinishCycle(const std::shared_ptr<Cycle>& cycle) {
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [k, n] : unpublished_forgets_) cycle->forgotten.insert(k);
    for (const PrefixKey& k : cycle->published) {
      auto it = unpublished_forgets_.find(k);
      if (it != unpublished_forgets_.end() && --it->second <= 0) {
        unpublished_forgets_.erase(it);
      }
    }
  }
  if (!cycle->forgotten.empty()) {
    cycle->states.erase(
        std::remove_if(cycle->states.begin(), cycle->states.end(),
                       [&](const SharedKey& k) {
                         return cycle->forgotten.contains(k.key);
                       }),
        cycle->states.end());
  }
  const harvest::MergeStats merged = detector_->MergeShared(cycle->states);
  const absl::Time now = absl::Now();
  const double seconds = absl::ToDoubleSeconds(now - cycle->start);
  const size_t applied = cycle->applied;
  {
    absl::MutexLock lock(&mu_);
    ++status_.flushes;
    status_.keys_sent += applied;
    status_.keys_merged += merged.merged;
    status_.last_sync = now;
    for (size_t b = 0; b < kFlushBuckets.size(); ++b) {
      if (seconds <= kFlushBuckets[b]) ++status_.flush_buckets[b];
    }
    status_.flush_seconds_sum += seconds;
    ++status_.flush_count;
  }
  const bool failing = cycle->errors > 0;
  if (failing != writes_failing_) {
    writes_failing_ = failing;
    SetState(failing ? "writes failing" : "connected",
             failing ? (cycle->first_error.empty() ? "error replies"
                                                   : cycle->first_error)
                     : "");
  }
  cycle_ = nullptr;
  next_flush_ = cycle->start + options_.flush_interval;
}

}  // namespace rcptguard::harvest_shared
